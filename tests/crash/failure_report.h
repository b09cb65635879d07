#pragma once

#include <string>

#include "tests/crash/campaign.h"

namespace hydrate::crash {

// The report of one campaign failure: the check and what it saw, the seed, how far the trace
// shrank, the minimal trace (settings, cut, the journal up to the cut) and the commands that
// reproduce the minimal trace and the original seed. Re-runs the minimal workload to show the
// journal.
std::string format_failure(const CaseFailure& failure, const CampaignOptions& options);

}  // namespace hydrate::crash
