// SPDX-License-Identifier: Apache-2.0
// Compiled-in sanitizer options for binaries that run with an environment of someone else's
// making (the plugin under a runtime, the agent under hack/cluster.sh): see
// cmake/SluiceSanitize.cmake. The runtimes call these before main().
#ifndef SLUICE_SANITIZER_LOG_PATH
#error "SLUICE_SANITIZER_LOG_PATH must be defined"
#endif

extern "C" {

__attribute__((used, visibility("default"))) const char* __asan_default_options() {
  // exitcode 23: a test that expects the plugin to fail (exit 1) notices a report too.
  return "halt_on_error=1:detect_leaks=1:abort_on_error=0:exitcode=23:print_summary=1:log_path="
         SLUICE_SANITIZER_LOG_PATH;
}

// gcc's UBSan next to ASan reports to stderr whatever log_path says: it aborts instead, so a
// report cannot pass for an ordinary exit 1.
__attribute__((used, visibility("default"))) const char* __ubsan_default_options() {
  return "halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=" SLUICE_SANITIZER_LOG_PATH;
}

__attribute__((used, visibility("default"))) const char* __lsan_default_options() {
  return "log_path=" SLUICE_SANITIZER_LOG_PATH;
}

}  // extern "C"
