// catga dlq list | show <seq> | replay <seq>... | --all | purge

#include <iostream>
#include <memory>

#include "catga/wire.hpp"
#include "commands.hpp"
#include "dead_letters.hpp"
#include "table.hpp"

namespace catga::cli {
namespace {

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
  auto letters = list_dead_letters(*session, f.type, f.limit);
  if (!letters) return report(letters.error());
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& dl : *letters) out.push_back(dl.summary_json());
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
  auto dl = read_dead_letter(*session, seq);
  if (!dl) return report(dl.error());
  if (!*dl) return report(make_error("not_found", "no dead letter #" + std::to_string(seq) + " in " + g.dead_letters()));
  const DeadLetter& d = **dl;
  if (g.json) {
    print_json(std::cout, d.full_json());
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
  std::vector<DeadLetter> letters;
  int code = 0;
  if (f.all) {
    auto all = list_dead_letters(*session, f.type, 0);
    if (!all) return report(all.error());
    letters = std::move(*all);
  } else {
    for (auto seq : f.sequences) {
      auto dl = read_dead_letter(*session, seq);
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
    auto r = replay_dead_letter(*session, dl, f.keep);
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
  auto n = purge_dead_letters(*session, f.type);
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
