# How the suite shares the machine's cores (scripts/test).
#
# Each test that computes holds one slot of the resource `cpu` while it runs
# (RESOURCE_GROUPS "cpu:1"); scripts/test gives CTest as many `cpu` slots as
# the machine has cores, and a higher -j. Tests labelled `slow` spend minutes
# waiting out the library's default timings (an ack wait, a lease) with
# nothing to compute: they hold no slot, so they wait beside the others
# instead of keeping a core idle. Without --resource-spec-file (a plain
# `ctest -jN`) the groups are ignored and -j alone decides.
#
#   add_test(NAME my_test COMMAND my_test)
#   catga_test_uses_cpu(my_test)
function(catga_test_uses_cpu)
  foreach(test IN LISTS ARGN)
    set_tests_properties(${test} PROPERTIES RESOURCE_GROUPS "cpu:1")
  endforeach()
endfunction()
