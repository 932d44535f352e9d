// Python str semantics on UTF-8 strings for the template interpreter: code-point length, indexing
// and slicing, whitespace as str.isspace() defines it, strip/split with and without arguments,
// case mapping (utf8proc), splitlines.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace safekey::text::jinja {

// Code points of valid UTF-8 text (invalid bytes decode as themselves, one per byte).
std::vector<uint32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);
std::string encode_utf8(const std::vector<uint32_t>& cps, size_t begin, size_t end);
size_t count_code_points(std::string_view s);

// str.isspace() for one code point (the set Python's str.strip()/split() and re's \s use).
bool py_isspace(uint32_t cp);

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep=None, maxsplit=-1); sep must not be empty (checked by the caller).
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends = false);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_replace(std::string_view s, std::string_view old_s, std::string_view new_s, int64_t count);
// Python slice indices (start/stop/step may be absent) over a sequence of length n.
std::vector<int64_t> py_slice_indices(int64_t n, std::optional<int64_t> start, std::optional<int64_t> stop,
                                      std::optional<int64_t> step);

}  // namespace safekey::text::jinja
