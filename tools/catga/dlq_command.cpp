// catga dlq list | show <seq> | replay <seq>... | --all | purge

#include <charconv>
#include <cstdint>
#include <iostream>
#include <memory>

#include "catga/nats/dead_letters.hpp"
#include "catga/wire.hpp"
#include "commands.hpp"
#include "table.hpp"

namespace catga::cli {
namespace {

using catga::nats::DeadLetter;
using catga::nats::DeadLetterQueue;

DeadLetterQueue dead_letter_queue(const Session& session) {
  return DeadLetterQueue(session.connection(), session.options().jetstream_options(), session.timeout());
}

// Summary fields (list) as JSON. A header that is a plain decimal number is
// shown as one; anything else ("-1", "12abc", a number past 2^64) as the text
// it is, never as a wrapped or truncated number.
nlohmann::json summary_json(const DeadLetter& dl) {
  auto number = [&](std::string_view h) -> nlohmann::json {
    const auto v = dl.header_or(h);
    if (v.empty()) return nullptr;
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size()) return v;
    return n;
  };
  return {{"seq", dl.sequence},
          {"subject", dl.subject},
          {"type", dl.type},
          {"time", format_time(dl.time_ns)},
          {"group", dl.header_or(wire::kGroup)},
          {"deliveries", number(wire::kDeliveries)},
          {"error_code", dl.header_or(wire::kErrorCode)},
          {"error", dl.header_or(wire::kError)},
          {"original_subject", dl.header_or(wire::kOriginalSubject)},
          {"original_seq", number(wire::kOriginalSeq)},
          {"original_msg_id", dl.header_or(wire::kOriginalMsgId)}};
}

// Everything (show) as JSON.
nlohmann::json full_json(const DeadLetter& dl) {
  auto j = summary_json(dl);
  nlohmann::json hs = nlohmann::json::object();
  for (const auto& [k, v] : dl.headers) hs[k] = v;  // a repeated header keeps its last value
  j["headers"] = std::move(hs);
  // A body that is not JSON (the usual reason for a `malformed` dead letter)
  // is shown as text instead.
  auto parsed = nlohmann::json::parse(dl.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    j["body"] = nullptr;
    j["body_text"] = dl.body;
  } else {
    j["body"] = std::move(parsed);
  }
  return j;
}

struct DlqFlags {
  std::string type;
  std::size_t limit = 100;
  std::vector<std::uint64_t> sequences;
  bool all = false;
  bool keep = false;
  bool yes = false;
};

int run_list(const GlobalOptions& g, const DlqFlags& f) {
  auto session = Session::open(g);
  if (!session) return report(session.error());
  auto letters = dead_letter_queue(*session).list(f.type, f.limit);
  if (!letters) return report(letters.error());
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& dl : *letters) out.push_back(summary_json(dl));
    print_json(std::cout, out);
    return 0;
  }
  if (letters->empty()) {
    std::cout << "no dead letters in " << g.dead_letters() << (f.type.empty() ? "" : " of type " + f.type) << '\n';
    return 0;
  }
  Table t({"SEQ", "TYPE", "GROUP", "DELIVERIES", "CODE", "ERROR", "STORED"}, {true, false, false, true});
  for (const auto& dl : *letters) {
    t.add({std::to_string(dl.sequence), dl.type, dl.header_or("Catga-Group", "-"),
           dl.header_or(wire::kDeliveries, "-"), dl.header_or(wire::kErrorCode, "-"),
           shorten(dl.header_or(wire::kError, "-"), 60), format_time(dl.time_ns)});
  }
  t.print(std::cout);
  if (f.limit != 0 && letters->size() == f.limit) std::cout << "(first " << f.limit << "; --limit 0 lists all)\n";
  return 0;
}

int run_show(const GlobalOptions& g, std::uint64_t seq) {
  auto session = Session::open(g);
  if (!session) return report(session.error());
  auto dl = dead_letter_queue(*session).get(seq);
  if (!dl) return report(dl.error());
  if (!*dl) return report(make_error("not_found", "no dead letter #" + std::to_string(seq) + " in " + g.dead_letters()));
  const DeadLetter& d = **dl;
  if (g.json) {
    print_json(std::cout, full_json(d));
    return 0;
  }
  std::cout << "dead letter #" << d.sequence << " in " << g.dead_letters() << " (stored " << format_time(d.time_ns)
            << ")\nsubject: " << d.subject << "\nheaders:\n";
  for (const auto& [k, v] : d.headers) std::cout << "  " << k << ": " << v << '\n';
  std::cout << "body (" << d.body.size() << " bytes):\n" << d.body << '\n';
  return 0;
}

int run_replay(const GlobalOptions& g, const DlqFlags& f) {
  if (f.all == !f.sequences.empty()) {
    return report(make_error(errc::validation, "dlq replay: give dead-letter sequences or --all (not both)"));
  }
  auto session = Session::open(g);
  if (!session) return report(session.error());
  const DeadLetterQueue dlq = dead_letter_queue(*session);
  std::vector<DeadLetter> letters;
  int code = 0;
  if (f.all) {
    auto all = dlq.list(f.type, 0);
    if (!all) return report(all.error());
    letters = std::move(*all);
  } else {
    for (auto seq : f.sequences) {
      auto dl = dlq.get(seq);
      if (!dl) return report(dl.error());
      if (!*dl) {
        code = report(make_error("not_found", "no dead letter #" + std::to_string(seq) + " in " + g.dead_letters()));
        continue;
      }
      letters.push_back(std::move(**dl));
    }
  }
  nlohmann::json out = nlohmann::json::array();
  Table t({"DLQ SEQ", "SUBJECT", "STREAM SEQ", "MESSAGE ID", "RESULT"}, {true, false, true});
  for (const auto& dl : letters) {
    auto r = dlq.replay(dl, f.keep);
    if (!r) {
      code = report(r.error());
      out.push_back({{"dlq_seq", dl.sequence}, {"ok", false}, {"error", r.error().message}});
      t.add({std::to_string(dl.sequence), "-", "-", "-", "failed"});
      continue;
    }
    const std::string result = r->duplicate ? "already replayed (duplicate, not stored again)" : "replayed";
    out.push_back({{"dlq_seq", r->dead_letter_seq},
                   {"ok", true},
                   {"subject", r->subject},
                   {"stream_seq", r->stream_seq},
                   {"msg_id", r->message_id},
                   {"original_msg_id", r->original_id},
                   {"duplicate", r->duplicate},
                   {"removed", r->removed}});
    t.add({std::to_string(r->dead_letter_seq), r->subject, std::to_string(r->stream_seq), r->message_id,
           result + (r->removed ? ", removed" : "")});
  }
  if (g.json) {
    print_json(std::cout, out);
  } else if (letters.empty()) {
    std::cout << "nothing to replay\n";
  } else {
    t.print(std::cout);
  }
  return code;
}

int run_purge(const GlobalOptions& g, const DlqFlags& f) {
  if (!f.yes) {
    return report(make_error(errc::validation, "dlq purge deletes dead letters for good; add --yes to confirm"));
  }
  auto session = Session::open(g);
  if (!session) return report(session.error());
  auto n = dead_letter_queue(*session).purge(f.type);
  if (!n) return report(n.error());
  if (g.json) {
    print_json(std::cout, {{"stream", g.dead_letters()}, {"type", f.type}, {"purged", *n}});
  } else {
    std::cout << "purged " << *n << " dead letter(s) from " << g.dead_letters()
              << (f.type.empty() ? "" : " of type " + f.type) << '\n';
  }
  return 0;
}

}  // namespace

void add_dlq_command(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto flags = std::make_shared<DlqFlags>();
  auto* dlq = app.add_subcommand("dlq", "dead letters: list, show, replay, purge");
  dlq->require_subcommand(1);

  auto* list = dlq->add_subcommand("list", "list dead letters, oldest first");
  list->add_option("-t,--type", flags->type, "only this message type");
  list->add_option("-n,--limit", flags->limit, "at most this many (0: all)")->capture_default_str();
  list->callback([&g, &exit_code, flags] { exit_code = run_list(g, *flags); });

  auto* show = dlq->add_subcommand("show", "one dead letter with its headers and body");
  show->add_option("seq", flags->sequences, "dead-letter stream sequence")->required()->expected(1);
  show->callback([&g, &exit_code, flags] { exit_code = run_show(g, flags->sequences.front()); });

  auto* replay = dlq->add_subcommand(
      "replay", "publish dead letters again to their original subject (same message id for consumers)");
  replay->add_option("seq", flags->sequences, "dead-letter stream sequences");
  replay->add_flag("--all", flags->all, "every dead letter (of --type)");
  replay->add_option("-t,--type", flags->type, "with --all: only this message type");
  replay->add_flag("--keep", flags->keep, "keep the dead letters after replaying them");
  replay->callback([&g, &exit_code, flags] { exit_code = run_replay(g, *flags); });

  auto* purge = dlq->add_subcommand("purge", "delete dead letters for good");
  purge->add_option("-t,--type", flags->type, "only this message type");
  purge->add_flag("-y,--yes", flags->yes, "confirm");
  purge->callback([&g, &exit_code, flags] { exit_code = run_purge(g, *flags); });
}

}  // namespace catga::cli
