// catga streams: every JetStream stream with its size and consumers.

#include <iostream>

#include "catga/nats/streams.hpp"
#include "commands.hpp"
#include "table.hpp"

namespace catga::cli {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

int run_streams(const GlobalOptions& g) {
  auto session = Session::open(g);
  if (!session) return report(session.error());
  auto streams = catga::nats::list_streams(*session->connection(), session->timeout());
  if (!streams) return report(streams.error());

  nlohmann::json out = nlohmann::json::array();
  Table t({"STREAM", "SUBJECTS", "MESSAGES", "BYTES", "FIRST SEQ", "LAST SEQ", "CONSUMERS", "STORAGE", "REPLICAS"},
          {false, false, true, true, true, true, true, false, true});
  for (const auto& s : *streams) {
    const std::string subjects = join(s.subjects);
    const std::string storage = s.storage == catga::nats::StorageType::memory ? "memory" : "file";
    out.push_back({{"name", s.name},
                   {"subjects", subjects},
                   {"messages", s.messages},
                   {"bytes", s.bytes},
                   {"first_seq", s.first_seq},
                   {"last_seq", s.last_seq},
                   {"consumers", s.consumers},
                   {"storage", storage},
                   {"replicas", s.replicas},
                   {"duplicate_window_ns", s.duplicate_window.count()},
                   {"max_age_ns", s.max_age.count()}});
    t.add({s.name, shorten(subjects, 40), std::to_string(s.messages), std::to_string(s.bytes),
           std::to_string(s.first_seq), std::to_string(s.last_seq), std::to_string(s.consumers), storage,
           std::to_string(s.replicas)});
  }
  if (g.json) {
    print_json(std::cout, out);
  } else if (t.empty()) {
    std::cout << "no streams\n";
  } else {
    t.print(std::cout);
  }
  return 0;
}

}  // namespace

void add_streams_command(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("streams", "JetStream streams: messages, bytes, sequences, consumers");
  cmd->callback([&g, &exit_code] { exit_code = run_streams(g); });
}

}  // namespace catga::cli
