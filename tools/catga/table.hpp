#pragma once
// Table: aligned text columns for the tool's human-readable output.

#include <ostream>
#include <string>
#include <vector>

namespace catga::cli {

// Column widths fit the widest cell; numeric columns are right-aligned.
//
//   Table t({"SEQ", "TYPE"}, {true, false});
//   t.add({"7", "OrderPlaced"});
//   t.print(std::cout);
class Table {
 public:
  explicit Table(std::vector<std::string> headers, std::vector<bool> right_aligned = {});
  void add(std::vector<std::string> row);
  bool empty() const noexcept { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// "2026-11-22T06:50:01Z" from nanoseconds since the epoch ("-" for 0).
std::string format_time(long long unix_ns);
// Cuts `text` to at most `max` characters, marking the cut with "...".
std::string shorten(std::string text, std::size_t max);

}  // namespace catga::cli
