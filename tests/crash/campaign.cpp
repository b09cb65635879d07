#include "tests/crash/campaign.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>

#include "tests/crash/cut_points.h"
#include "tests/crash/failure_report.h"
#include "tests/crash/seeded_random.h"
#include "tests/crash/workload_runner.h"

namespace hydrate::crash {
namespace {

LossPolicy pick_policy(SeededRandom& random) {
  const uint64_t roll = random.below(100);
  if (roll < 30) return LossPolicy::none();
  if (roll < 45) return LossPolicy::all();
  return LossPolicy::random_from(random.next());
}

}  // namespace

std::vector<CutCase> choose_cuts(const RunRecord& run, uint64_t seed,
                                 const CampaignOptions& options) {
  SeededRandom random(mix_seed(seed, 0x637574));
  std::vector<CutCase> cuts;
  std::vector<CutPoint> points = commit_protocol_cuts(run.journal->events(), run.end);
  if (!options.every_protocol_cut) {
    // A random sample, kept in journal order.
    for (size_t i = 0; i < points.size() && i < options.protocol_cuts; ++i)
      std::swap(points[i], points[i + random.below(points.size() - i)]);
    points.resize(std::min<size_t>(points.size(), options.protocol_cuts));
    std::sort(points.begin(), points.end(),
              [](const CutPoint& a, const CutPoint& b) { return a.seq < b.seq; });
  }
  for (const CutPoint& point : points) {
    LossPolicy d = pick_policy(random), m = pick_policy(random);
    cuts.push_back({point.seq, d, m, point.label});
  }
  for (unsigned i = 0; i < options.random_cuts && run.end > 0; ++i) {
    // Mostly while the clone is in use; one in ten during the creation of its metadata.
    const uint64_t opened = std::min(run.opened, run.end);
    uint64_t seq = random.chance(10) ? random.between(0, opened) : random.between(opened, run.end);
    LossPolicy d = pick_policy(random), m = pick_policy(random);
    cuts.push_back({seq, d, m, "random"});
  }
  return cuts;
}

CampaignReport run_campaign(const CampaignOptions& options) {
  CampaignReport report;
  const auto started = std::chrono::steady_clock::now();
  auto log = [&](const std::string& text) {
    if (options.log) options.log(text);
  };
  auto record_failure = [&](uint64_t seed, FailingCase failing) {
    CaseFailure failure;
    failure.seed = seed;
    failure.case_number = report.cases;
    failure.original_ops = failing.workload.ops.size();
    failure.original = failing;
    failure.minimal = failing;
    if (options.shrink) {
      ShrinkResult shrunk = shrink(failing, options.shrink_budget);
      failure.minimal = shrunk.minimal;
      failure.shrink_attempts = shrunk.attempts;
    }
    failure.report = format_failure(failure, options);
    log(failure.report);
    report.failures.push_back(std::move(failure));
  };

  for (uint64_t i = 0; i < options.workloads; ++i) {
    if (options.max_cases && report.cases >= options.max_cases) break;
    if (options.stop_at_first_failure && !report.failures.empty()) break;
    const uint64_t seed = options.first_seed + i;
    Workload workload = generate_workload(seed, options.generator);
    RunRecord run = run_workload(workload);
    ++report.workloads;
    report.client_requests += workload.ops.size();
    report.source_discards += run.discards.size();

    std::vector<Violation> run_violations = verify_run(run);
    if (!run_violations.empty()) {
      record_failure(seed, FailingCase{workload, std::nullopt, run_violations.front()});
      continue;
    }
    for (const CutCase& cut : choose_cuts(run, seed, options)) {
      if (options.max_cases && report.cases >= options.max_cases) break;
      CutVerdict verdict = verify_cut(run, cut, options.verify);
      ++report.cases;
      report.regions_loaded += verdict.regions_loaded;
      if (verdict.refused_during_create) ++report.refused_during_create;
      if (cut.label != "random") ++report.cut_labels[cut.label];
      if (!verdict.violations.empty()) {
        record_failure(seed, FailingCase{workload, cut, verdict.violations.front()});
        break;  // one failure per workload is enough to act on
      }
    }
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

std::string summary(const CampaignReport& report) {
  char line[512];
  std::snprintf(line, sizeof line,
                "crash campaign: %llu cases (power cuts) over %llu workloads, %llu client "
                "requests, %llu source discards, %llu refusals during metadata creation, "
                "%.1f s, %zu failure(s)",
                static_cast<unsigned long long>(report.cases),
                static_cast<unsigned long long>(report.workloads),
                static_cast<unsigned long long>(report.client_requests),
                static_cast<unsigned long long>(report.source_discards),
                static_cast<unsigned long long>(report.refused_during_create), report.seconds,
                report.failures.size());
  return line;
}

namespace {

std::string self_path() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return "unit_crash";
  path[n] = '\0';
  // A binary rebuilt while it runs reads back as "PATH (deleted)"; the command wants PATH.
  std::string text = path;
  const std::string deleted = " (deleted)";
  if (text.size() > deleted.size() && text.ends_with(deleted))
    text.resize(text.size() - deleted.size());
  return text;
}

std::string quoted(const std::string& text) {
  return "'" + text + "'";
}

}  // namespace

std::string seed_command(uint64_t seed, const CampaignOptions& options) {
  const GeneratorOptions& g = options.generator;
  std::string knobs =
      "protocol=" + std::to_string(options.protocol_cuts) +
      " every=" + std::to_string(options.every_protocol_cut) +
      " random=" + std::to_string(options.random_cuts) + " minsize=" + std::to_string(g.min_size) +
      " maxsize=" + std::to_string(g.max_size) + " conns=" + std::to_string(g.max_connections) +
      " minops=" + std::to_string(g.min_ops) + " maxops=" + std::to_string(g.max_ops) +
      " skipflush=" + std::to_string(g.skip_destination_flush) +
      " knownbugs=" + std::to_string(!g.avoid_known_bugs);
  return "HYDRATE_CRASH_SEED=" + std::to_string(seed) + " HYDRATE_CRASH_CAMPAIGN=" + quoted(knobs) +
         " " + self_path() + " --gtest_filter=CrashReplay.Seed";
}

bool parse_campaign_knobs(std::string_view text, CampaignOptions& options, std::string& error) {
  GeneratorOptions& g = options.generator;
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view field = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (field.empty()) continue;
    size_t eq = field.find('=');
    std::string key(field.substr(0, eq));
    uint64_t value = 0;
    std::string_view digits = eq == std::string_view::npos ? "" : field.substr(eq + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (eq == std::string_view::npos || ec != std::errc() || end != digits.data() + digits.size()) {
      error = "campaign knob '" + std::string(field) + "' is not KEY=NUMBER";
      return false;
    }
    if (key == "protocol")
      options.protocol_cuts = static_cast<unsigned>(value);
    else if (key == "every")
      options.every_protocol_cut = value != 0;
    else if (key == "random")
      options.random_cuts = static_cast<unsigned>(value);
    else if (key == "minsize")
      g.min_size = value;
    else if (key == "maxsize")
      g.max_size = value;
    else if (key == "conns")
      g.max_connections = static_cast<unsigned>(value);
    else if (key == "minops")
      g.min_ops = static_cast<unsigned>(value);
    else if (key == "maxops")
      g.max_ops = static_cast<unsigned>(value);
    else if (key == "skipflush")
      g.skip_destination_flush = value != 0;
    else if (key == "knownbugs")
      g.avoid_known_bugs = value == 0;
    else if (key == "stopfirst")
      options.stop_at_first_failure = value != 0;
    else if (key == "shrinksecs")
      options.shrink_budget = std::chrono::seconds(value);
    else {
      error = "unknown campaign knob '" + key + "'";
      return false;
    }
  }
  if (g.min_size < 4096 || g.max_size < g.min_size || g.min_ops > g.max_ops) {
    error = "campaign knobs give an empty range (minsize " + std::to_string(g.min_size) +
            ", maxsize " + std::to_string(g.max_size) + ", minops " + std::to_string(g.min_ops) +
            ", maxops " + std::to_string(g.max_ops) + ")";
    return false;
  }
  return true;
}

std::string trace_command(const FailingCase& failing) {
  std::string command = "HYDRATE_CRASH_REPLAY=" + quoted(to_text(failing.workload));
  if (failing.cut) command += " HYDRATE_CRASH_CUT=" + quoted(to_text(*failing.cut));
  return command + " " + self_path() + " --gtest_filter=CrashReplay.Trace";
}

}  // namespace hydrate::crash
