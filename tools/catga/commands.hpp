#pragma once
// The tool's subcommands. Each adds itself to the CLI11 app; its callback
// connects, runs, prints (table, or JSON with --json) and sets `exit_code`
// (0 ok, 1 failure; CLI11 itself exits with 2 on a usage error).

#include <CLI/CLI.hpp>

#include <iosfwd>

#include <nlohmann/json.hpp>

#include "session.hpp"

namespace catga::cli {

void add_dlq_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_streams_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_consumers_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_outbox_command(CLI::App& app, const GlobalOptions& global, int& exit_code);

// Prints JSON for scripts (invalid UTF-8 in bodies becomes U+FFFD).
void print_json(std::ostream& out, const nlohmann::json& j);
// "catga: error: <message>" on stderr; returns 1 (the exit code).
int report(const Error& error);

}  // namespace catga::cli
