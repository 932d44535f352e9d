# Runs PROG with ARGS (a list) and checks its exit status (EXPECT_FAIL: 1 = must fail, 0 = must
# pass) and that its output (stdout + stderr) matches the regular expression WANT.
# Usage: cmake -DPROG=... -DARGS=a;b -DEXPECT_FAIL=1 -DWANT=regex -P expect.cmake
execute_process(COMMAND ${PROG} ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
set(all "${out}${err}")
message("exit status: ${rc}\n${all}")
if(EXPECT_FAIL AND rc EQUAL 0)
  message(FATAL_ERROR "expected a failing exit status, got 0")
endif()
if(NOT EXPECT_FAIL AND NOT rc EQUAL 0)
  message(FATAL_ERROR "expected exit status 0, got ${rc}")
endif()
if(NOT all MATCHES "${WANT}")
  message(FATAL_ERROR "the output does not match: ${WANT}")
endif()
