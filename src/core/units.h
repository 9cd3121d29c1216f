#pragma once
// Sizes and durations as users write them on the command line: "480MiB", "3GiB", "1.5GB",
// "1048576"; "2", "2s", "500ms", "1m".
#include <cstdint>
#include <string>
#include <string_view>

namespace morphserve {

// Bytes. Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) units, or plain bytes ("B" or
// none). Throws InvalidArgument naming the text for anything else, negatives or overflow.
uint64_t parse_size(std::string_view text);
// Seconds. Units ms, s, m, h; a plain number is seconds.
double parse_duration(std::string_view text);
// "1.5 GiB", "480.0 MiB", "512 B".
std::string format_size(uint64_t bytes);

}  // namespace morphserve
