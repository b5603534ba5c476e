#pragma once
// run_cli: runs the `catga` binary as a subprocess and captures its output.

#include <string>
#include <vector>

namespace catga::test {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `binary args...` with a clean environment (no NATS_* variables from
// the caller) and waits for it; CliResult::exit_code is -1 if it did not
// exit normally.
//
//   auto r = run_cli(CATGA_CLI, {"--server", url, "dlq", "list"});
//   CHECK(r.exit_code == 0);
CliResult run_cli(const std::string& binary, const std::vector<std::string>& args);

}  // namespace catga::test
