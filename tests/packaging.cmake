# What a packager and a user of the installed library rely on, checked on
# the build tree (scripts/check-install checks an installed tree the same
# way):
#   abi_symbols: the header's EVSHM_API functions, the version script and
#     the symbols of libevshm.so and libevshm.a are one set;
#   man_pages: every page renders and lints cleanly, every function has one.
add_test(NAME abi_symbols
  COMMAND ${PROJECT_SOURCE_DIR}/scripts/check-abi
          ${PROJECT_SOURCE_DIR}/include/evshm.h ${EVSHM_MAP}
          $<TARGET_FILE:evshm> $<TARGET_FILE:evshm_static>)
set_tests_properties(abi_symbols PROPERTIES TIMEOUT 60 LABELS packaging)
if(EVSHM_MAN_DIR)
  add_test(NAME man_pages
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/check-man ${EVSHM_MAN_DIR}
            ${PROJECT_SOURCE_DIR}/include/evshm.h)
else()
  add_test(NAME man_pages
    COMMAND sh -c "echo 'scdoc was not found when this tree was configured: no man pages to check'; exit 77")
endif()
set_tests_properties(man_pages PROPERTIES TIMEOUT 60 LABELS packaging
  SKIP_RETURN_CODE 77)
