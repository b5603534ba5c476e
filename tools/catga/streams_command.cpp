// catga streams: every JetStream stream with its size and consumers.

#include <iostream>

#include "commands.hpp"
#include "error.hpp"
#include "table.hpp"

namespace catga::cli {
namespace {

std::string join(const char* const* items, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i > 0 ? "," : "") + std::string(items[i]);
  return out;
}

int run_streams(const GlobalOptions& g) {
  auto session = Session::open(g);
  if (!session) return report(session.error());
  jsStreamInfoList* raw = nullptr;
  jsOptions o = session->js_options();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_Streams(&raw, session->js(), &o, &jerr);
  // An account without streams answers "not found".
  if (s != NATS_OK && s != NATS_NOT_FOUND) {
    return report(catga::nats::detail::to_error(s, jerr, "list streams", catga::nats::detail::Surface::jetstream));
  }
  struct Free {
    jsStreamInfoList* p;
    ~Free() {
      if (p != nullptr) jsStreamInfoList_Destroy(p);
    }
  } free_list{raw};

  nlohmann::json out = nlohmann::json::array();
  Table t({"STREAM", "SUBJECTS", "MESSAGES", "BYTES", "FIRST SEQ", "LAST SEQ", "CONSUMERS", "STORAGE", "REPLICAS"},
          {false, false, true, true, true, true, true, false, true});
  const int count = raw != nullptr ? raw->Count : 0;
  for (int i = 0; i < count; ++i) {
    const jsStreamInfo* si = raw->List[i];
    const jsStreamConfig* c = si->Config;
    const std::string name = c->Name != nullptr ? c->Name : "";
    const std::string subjects = join(c->Subjects, c->SubjectsLen);
    const std::string storage = c->Storage == js_MemoryStorage ? "memory" : "file";
    const auto& st = si->State;
    out.push_back({{"name", name},
                   {"subjects", subjects},
                   {"messages", st.Msgs},
                   {"bytes", st.Bytes},
                   {"first_seq", st.FirstSeq},
                   {"last_seq", st.LastSeq},
                   {"consumers", st.Consumers},
                   {"storage", storage},
                   {"replicas", c->Replicas},
                   {"duplicate_window_ns", c->Duplicates},
                   {"max_age_ns", c->MaxAge}});
    t.add({name, shorten(subjects, 40), std::to_string(st.Msgs), std::to_string(st.Bytes), std::to_string(st.FirstSeq),
           std::to_string(st.LastSeq), std::to_string(st.Consumers), storage, std::to_string(c->Replicas)});
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
