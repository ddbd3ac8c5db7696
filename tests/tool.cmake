# The evshm command, end to end: shell scripts drive the real program
# (`bash tests/tool/X.sh path/to/evshm`); `ctest -L tool`.  Sanitizer runs
# set EVSHM_TEST_SCALE, which shrinks the data the scripts move.
set(EVSHM_TOOL_TESTS help pipe_big pipe_roles pipe_death topic_big topic_roles std_closed
  topic_death bench_smoke ps_stdout cleanup)
foreach(t ${EVSHM_TOOL_TESTS})
  add_test(NAME tool_${t}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/${t}.sh $<TARGET_FILE:evshm_tool>)
  set_tests_properties(tool_${t} PROPERTIES TIMEOUT 120 LABELS tool)
endforeach()
# A GiB to three subscribers is three GiB of sha256 on a shared machine.
set_tests_properties(tool_topic_big PROPERTIES TIMEOUT 300)

# An independent topic subscriber, written from docs/protocol.md alone in
# pure Python (tests/indep_sub.py), against `evshm pub`; skips without
# python3.
add_test(NAME tool_topic_indep
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/topic_indep.sh $<TARGET_FILE:evshm_tool>)
set_tests_properties(tool_topic_indep PROPERTIES TIMEOUT 120 LABELS tool
  SKIP_RETURN_CODE 77 ENVIRONMENT "EVSHM_PYTHON=${Python3_EXECUTABLE}")

# The demo: two unrelated processes (the tool spawns itself).
add_test(NAME evshm_demo COMMAND evshm_tool demo)
set_tests_properties(evshm_demo PROPERTIES TIMEOUT 60 LABELS tool)

# tools/ builds against an installed libevshm alone (the public API):
# install this tree into a scratch prefix, build the tool there with
# find_package and with pkg-config, run it.  Sanitizer builds pass their
# flags on (the installed library needs their runtime).
set(_tool_cflags "")
if(EVSHM_SANITIZE)
  set(_tool_cflags -fsanitize=${EVSHM_SANITIZE} -fno-omit-frame-pointer)
endif()
add_test(NAME tool_installed_build
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/installed_build.sh
    ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR}/tools ${_tool_cflags})
set_tests_properties(tool_installed_build PROPERTIES TIMEOUT 300 LABELS tool
  ENVIRONMENT "CC=${CMAKE_C_COMPILER}")

# evshm ps and top: live channels and topics between test programs (one
# end each, public API), the CLI pipe, another uid, hostile regions.
evshm_peer(peer_ps peer_ps.c)
evshm_peer(peer_ps_hostile peer_ps_hostile.c)
foreach(t ps_chan ps_topic ps_uid ps_hostile)
  add_test(NAME tool_${t}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/${t}.sh $<TARGET_FILE:evshm_tool>
      $<TARGET_FILE:peer_ps> $<TARGET_FILE:peer_ps_hostile>)
  set_tests_properties(tool_${t} PROPERTIES TIMEOUT 60 LABELS tool
    SKIP_RETURN_CODE 77)
endforeach()

# `evshm send` against a receiver whose confirmation is not 8 bytes.
evshm_peer(peer_ack peer_ack.c)
add_test(NAME tool_pipe_ack
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/pipe_ack.sh $<TARGET_FILE:evshm_tool>
    $<TARGET_FILE:peer_ack>)
set_tests_properties(tool_pipe_ack PROPERTIES TIMEOUT 60 LABELS tool)
