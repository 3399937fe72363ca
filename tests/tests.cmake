spaces_script_test(format 60 ${CMAKE_SOURCE_DIR}/ci/format.sh check)
