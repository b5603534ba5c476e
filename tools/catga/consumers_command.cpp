// catga consumers: consumer groups of the events stream with their lag.

#include <iostream>
#include <memory>

#include "commands.hpp"
#include "error.hpp"
#include "table.hpp"

namespace catga::cli {
namespace {

// Group and type from the description the transport gives its consumers:
// "catga group '<group>' for <Type>". Other consumers have neither.
std::pair<std::string, std::string> group_and_type(const char* description) {
  if (description == nullptr) return {};
  const std::string_view d(description);
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
  jsConsumerInfoList* raw = nullptr;
  jsOptions o = session->js_options();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_Consumers(&raw, session->js(), stream.c_str(), &o, &jerr);
  if (jerr == JSStreamNotFoundErr) {
    return report(make_error(errc::unavailable, "stream '" + stream + "' does not exist"));
  }
  if (s != NATS_OK && s != NATS_NOT_FOUND) {
    return report(catga::nats::detail::to_error(s, jerr, "list consumers of '" + stream + "'",
                                                catga::nats::detail::Surface::jetstream));
  }
  struct Free {
    jsConsumerInfoList* p;
    ~Free() {
      if (p != nullptr) jsConsumerInfoList_Destroy(p);
    }
  } free_list{raw};

  nlohmann::json out = nlohmann::json::array();
  Table t({"CONSUMER", "GROUP", "TYPE", "PENDING", "ACK PENDING", "REDELIVERED", "WAITING", "DELIVERED SEQ",
           "ACK FLOOR"},
          {false, false, false, true, true, true, true, true, true});
  const int count = raw != nullptr ? raw->Count : 0;
  for (int i = 0; i < count; ++i) {
    const jsConsumerInfo* ci = raw->List[i];
    const auto [group, type] = group_and_type(ci->Config != nullptr ? ci->Config->Description : nullptr);
    const std::string name = ci->Name != nullptr ? ci->Name : "";
    const std::string filter =
        ci->Config != nullptr && ci->Config->FilterSubject != nullptr ? ci->Config->FilterSubject : "";
    out.push_back({{"stream", stream},
                   {"name", name},
                   {"group", group},
                   {"type", type},
                   {"filter_subject", filter},
                   {"pending", ci->NumPending},
                   {"ack_pending", ci->NumAckPending},
                   {"redelivered", ci->NumRedelivered},
                   {"waiting", ci->NumWaiting},
                   {"delivered_stream_seq", ci->Delivered.Stream},
                   {"ack_floor_stream_seq", ci->AckFloor.Stream}});
    t.add({name, group.empty() ? "-" : group, type.empty() ? "-" : type, std::to_string(ci->NumPending),
           std::to_string(ci->NumAckPending), std::to_string(ci->NumRedelivered), std::to_string(ci->NumWaiting),
           std::to_string(ci->Delivered.Stream), std::to_string(ci->AckFloor.Stream)});
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
