// The SPDY/3 header-compression dictionary (wire data; must match byte for byte).
#pragma once

#include <cstddef>

namespace crid::streaming {

inline constexpr size_t kSpdy3DictionarySize = 1423;
extern const unsigned char kSpdy3Dictionary[kSpdy3DictionarySize];

}  // namespace crid::streaming
