// What this kiln binary is: its version and the source revision it was built from,
// recorded with every execution in the metadata store.
#ifndef KILN_BASE_BUILD_INFO_H_
#define KILN_BASE_BUILD_INFO_H_

#include <string_view>

namespace kiln {

// "0.1.0": the project version from CMakeLists.txt.
std::string_view KilnVersion();
// The git commit of the source tree at configure time, with "-dirty" when it had
// uncommitted changes; "unknown" outside a git checkout.
std::string_view GitSha();

}  // namespace kiln

#endif  // KILN_BASE_BUILD_INFO_H_
