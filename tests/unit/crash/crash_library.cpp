// The crash simulator and campaign live in tests/crash/ (they are shared by unit_crash and
// bench/crash/soak), but tests/CMakeLists.txt only compiles tests/support/ and
// tests/unit/<area>/ sources. Until it builds tests/crash/*.cpp as a library of its own, this
// translation unit compiles them into unit_crash.
#include "tests/crash/campaign.cpp"
#include "tests/crash/content_oracle.cpp"
#include "tests/crash/crash_verifier.cpp"
#include "tests/crash/cut_points.cpp"
#include "tests/crash/event_journal.cpp"
#include "tests/crash/failure_report.cpp"
#include "tests/crash/hop_latency_source.cpp"
#include "tests/crash/shrinker.cpp"
#include "tests/crash/volatile_cache_device.cpp"
#include "tests/crash/workload.cpp"
#include "tests/crash/workload_runner.cpp"
