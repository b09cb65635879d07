#include "tests/crash/cut_points.h"

#include <charconv>
#include <map>

namespace hydrate::crash {
namespace {

std::string step(const Event& e) {
  return std::string(to_string(e.actor)) + " " + to_string(e.action) +
         (e.phase == Phase::issue ? " issued" : " completed");
}

std::optional<LossPolicy> parse_policy(std::string_view text) {
  if (text == "keep-none") return LossPolicy::none();
  if (text == "keep-all") return LossPolicy::all();
  if (text.substr(0, 7) == "random:") {
    uint64_t seed = 0;
    auto digits = text.substr(7);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seed);
    if (ec == std::errc() && end == digits.data() + digits.size())
      return LossPolicy::random_from(seed);
  }
  return std::nullopt;
}

}  // namespace

std::vector<CutPoint> commit_protocol_cuts(const std::vector<Event>& events, uint64_t end) {
  std::map<uint64_t, std::string>
      cuts;  // the first label for a seq wins: "after X" over "before Y"
  for (const Event& e : events) {
    const bool protocol =
        e.actor == Actor::metadata || (e.actor == Actor::destination && e.action == Action::flush);
    if (!protocol) continue;
    if (e.seq <= end) cuts.emplace(e.seq, "before " + step(e));
    if (e.seq + 1 <= end) cuts.emplace(e.seq + 1, "after " + step(e));
  }
  std::vector<CutPoint> out;
  for (auto& [seq, label] : cuts) out.push_back({seq, label});
  return out;
}

std::string to_text(const CutCase& cut) {
  return "cut=" + std::to_string(cut.cut) + " dpol=" + to_string(cut.destination) +
         " mpol=" + to_string(cut.metadata);
}

std::optional<CutCase> parse_cut(std::string_view text, std::string& error) {
  CutCase cut;
  bool have_cut = false;
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view field = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (field.empty()) continue;
    if (field.substr(0, 4) == "cut=") {
      auto digits = field.substr(4);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cut.cut);
      if (ec != std::errc() || end != digits.data() + digits.size()) {
        error = "cut field '" + std::string(field) + "' is not cut=SEQ";
        return std::nullopt;
      }
      have_cut = true;
    } else if (field.substr(0, 5) == "dpol=" || field.substr(0, 5) == "mpol=") {
      auto policy = parse_policy(field.substr(5));
      if (!policy) {
        error = "loss policy '" + std::string(field.substr(5)) +
                "' is not keep-none, keep-all or random:SEED";
        return std::nullopt;
      }
      (field[0] == 'd' ? cut.destination : cut.metadata) = *policy;
    } else {
      error = "unknown cut field '" + std::string(field) + "'";
      return std::nullopt;
    }
  }
  if (!have_cut) {
    error = "no cut=SEQ field";
    return std::nullopt;
  }
  cut.label = "replayed";
  return cut;
}

}  // namespace hydrate::crash
