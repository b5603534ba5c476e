// Compiled by tests/mediator/check_compile_fail.cmake, once per case: every
// CASE_* must be rejected with catga's static_assert message; CASE_GOOD must
// compile (so a broken include path cannot pass as a rejection).

#include <catga/mediator.hpp>

#include <string>

namespace bad {
struct Charge {
  std::string card;
  long cents = 0;
};
CATGA_COMMAND(Charge, std::string, card, cents)

struct Charged {
  std::string card;
};
CATGA_EVENT(Charged, card)
}  // namespace bad

void register_handlers(catga::Mediator& m) {
#if defined(CASE_GOOD)
  m.handle<bad::Charge>([](const bad::Charge& c, catga::Context&) { return c.card; });
  m.on<bad::Charged>([](const bad::Charged&) {});
#elif defined(CASE_WRONG_ARGUMENT)
  m.handle<bad::Charge>([](const bad::Charged& e) { return e.card; });  // takes the event, not the command
#elif defined(CASE_WRONG_RESULT)
  m.handle<bad::Charge>([](const bad::Charge& c) { return c.cents; });  // long is not std::string
#elif defined(CASE_MUTABLE_MESSAGE)
  m.handle<bad::Charge>([](bad::Charge& c) { return c.card; });  // must take const M&
#elif defined(CASE_EVENT_RETURNS_VALUE)
  m.on<bad::Charged>([](const bad::Charged&) { return 42; });
#else
#error "define one CASE_*"
#endif
}

int main() {
  catga::Mediator m;
  register_handlers(m);
}
