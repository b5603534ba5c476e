// catga outbox dead --db <file>: the events a service's outbox could never
// publish (the broker refused them for good), kept in its SQLite database
// (table catga_outbox_dead) instead of being dropped.
#include <filesystem>
#include <iostream>
#include <memory>

#include "catga/outbox/outbox_store.hpp"
#include "commands.hpp"
#include "table.hpp"

namespace catga::cli {
namespace {

struct OutboxFlags {
  std::string db;
  std::size_t limit = 100;
};

int run_dead(const GlobalOptions& g, const OutboxFlags& f) {
  // Read only what is there: a missing file is an error, not a new outbox.
  if (!std::filesystem::exists(f.db)) {
    return report(make_error(errc::validation, "no outbox database at '" + f.db + "'"));
  }
  auto store = outbox::OutboxStore::open({.path = f.db});
  if (!store) return report(store.error());
  auto dead = (*store)->dead_letters(f.limit);
  if (!dead) return report(dead.error());
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : *dead) {
      out.push_back({{"seq", d.record.sequence},
                     {"type", d.record.type},
                     {"msg_id", d.record.message_id},
                     {"error_code", d.error_code},
                     {"error", d.error},
                     {"buried_ms", d.buried_ms},
                     {"body", d.record.body}});
    }
    print_json(std::cout, out);
    return 0;
  }
  if (dead->empty()) {
    std::cout << "no dead letters in " << f.db << '\n';
    return 0;
  }
  Table t({"SEQ", "TYPE", "MESSAGE ID", "CODE", "ERROR", "BODY BYTES", "BURIED"},
          {true, false, false, false, false, true});
  for (const auto& d : *dead) {
    t.add({std::to_string(d.record.sequence), d.record.type, d.record.message_id, d.error_code, d.error,
           std::to_string(d.record.body.size()), format_time(d.buried_ms * 1'000'000)});
  }
  t.print(std::cout);
  return 0;
}

}  // namespace

void add_outbox_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto flags = std::make_shared<OutboxFlags>();
  auto* outbox = app.add_subcommand("outbox", "a service's local outbox database");
  outbox->require_subcommand(1);
  auto* dead = outbox->add_subcommand("dead", "events the broker refused for good (kept, never dropped)");
  dead->add_option("--db", flags->db, "the service's outbox SQLite file")->required();
  dead->add_option("--limit", flags->limit, "at most this many, oldest first (0: all)");
  dead->callback([&global, &exit_code, flags] { exit_code = run_dead(global, *flags); });
}

}  // namespace catga::cli
