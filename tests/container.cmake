# The two ends of a channel in separate containers (user, mount, pid, ipc
# and net namespaces made with unshare), meeting through one bind-mounted
# socket directory: `ctest -L container`.  Needs root; skipped (77) where
# the namespaces cannot be made.  The peer uses only the public API and
# links libevshm.a, as a program in a container image would.
add_executable(xns_peer xns_peer.c)
target_include_directories(xns_peer PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(xns_peer PRIVATE evshm_static)
add_test(NAME container_xns
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/container/xns.sh $<TARGET_FILE:xns_peer>)
set_tests_properties(container_xns PROPERTIES TIMEOUT 120 LABELS container
  SKIP_RETURN_CODE 77)
