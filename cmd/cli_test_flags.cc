// A flag of the test's "sweep" subcommand (the subcommand owns this file's flags).
#include "absl/flags/flag.h"

ABSL_FLAG(bool, sweep_dry_run, false, "only report what would be swept");
