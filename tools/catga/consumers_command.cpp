// catga consumers: consumer groups of the events stream with their lag.

#include <iostream>
#include <memory>

#include "catga/nats/streams.hpp"
#include "commands.hpp"
#include "table.hpp"

namespace catga::cli {
namespace {

// Group and type from the description the transport gives its consumers:
// "catga group '<group>' for <Type>". Other consumers have neither.
std::pair<std::string, std::string> group_and_type(std::string_view d) {
  constexpr std::string_view kLead = "catga group '";
  constexpr std::string_view kFor = "' for ";
  if (d.substr(0, kLead.size()) != kLead) return {};
  const auto end = d.rfind(kFor);
  if (end == std::string_view::npos || end < kLead.size()) return {};
  return {std::string(d.substr(kLead.size(), end - kLead.size())), std::string(d.substr(end + kFor.size()))};
}

int run_consumers(const GlobalOptions& g, const std::string& stream_flag) {
  const std::string stream = stream_flag.empty() ? g.events() : stream_flag;
  auto session = Session::open(g);
  if (!session) return report(session.error());
  auto consumers = catga::nats::list_consumers(*session->connection(), stream, session->timeout());
  if (!consumers) return report(consumers.error());

  nlohmann::json out = nlohmann::json::array();
  Table t({"CONSUMER", "GROUP", "TYPE", "PENDING", "ACK PENDING", "REDELIVERED", "WAITING", "DELIVERED SEQ",
           "ACK FLOOR"},
          {false, false, false, true, true, true, true, true, true});
  for (const auto& c : *consumers) {
    const auto [group, type] = group_and_type(c.description);
    out.push_back({{"stream", stream},
                   {"name", c.name},
                   {"group", group},
                   {"type", type},
                   {"filter_subject", c.filter_subject},
                   {"pending", c.pending},
                   {"ack_pending", c.ack_pending},
                   {"redelivered", c.redelivered},
                   {"waiting", c.waiting},
                   {"delivered_stream_seq", c.delivered_stream_seq},
                   {"ack_floor_stream_seq", c.ack_floor_stream_seq}});
    t.add({c.name, group.empty() ? "-" : group, type.empty() ? "-" : type, std::to_string(c.pending),
           std::to_string(c.ack_pending), std::to_string(c.redelivered), std::to_string(c.waiting),
           std::to_string(c.delivered_stream_seq), std::to_string(c.ack_floor_stream_seq)});
  }
  if (g.json) {
    print_json(std::cout, out);
  } else if (t.empty()) {
    std::cout << "no consumers on " << stream << '\n';
  } else {
    t.print(std::cout);
  }
  return 0;
}

}  // namespace

void add_consumers_command(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto stream = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("consumers", "consumer groups: pending, ack pending and redelivered counts");
  cmd->add_option("--stream", *stream, "stream (default: the events stream)");
  cmd->callback([&g, &exit_code, stream] { exit_code = run_consumers(g, *stream); });
}

}  // namespace catga::cli
