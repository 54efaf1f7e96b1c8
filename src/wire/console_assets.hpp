// The console's files (console/ in the source tree), built into the binary by
// cmake/embed_assets.cmake: console_assets.cpp in the build directory defines these.
#pragma once

#include <cstddef>

namespace shoal {

struct console_asset {
  const char* name;          // "index.html", "console.js", ...
  const char* content_type;  // what the file is served as
  const unsigned char* data;
  size_t size;
};

extern const console_asset console_assets[];
extern const size_t console_asset_count;

}  // namespace shoal
