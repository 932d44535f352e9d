#include "safekey/text/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>

#include "safekey/text/unicode.h"

namespace safekey::text {

Normalizer Normalizer::from_json(const json& j, const std::string& where) {
  Normalizer n;
  if (j.is_null()) return n;
  SK_CHECK(j.is_object(), where, ": expected an object or null");
  std::string type = json_get<std::string>(j, "type", where);
  if (type == "NFC") {
    n.steps_.push_back(Kind::kNfc);
  } else if (type == "Sequence") {
    auto it = j.find("normalizers");
    SK_CHECK(it != j.end() && it->is_array(), where, ": Sequence needs an array 'normalizers'");
    for (size_t i = 0; i < it->size(); ++i) {
      Normalizer sub = from_json((*it)[i], cat(where, ".normalizers[", i, "]"));
      n.steps_.insert(n.steps_.end(), sub.steps_.begin(), sub.steps_.end());
    }
  } else {
    fail(where, ": unsupported normalizer type '", type, "' (supported: NFC, Sequence)");
  }
  return n;
}

bool Normalizer::normalize(std::string_view in, NormalizedText& out) const {
  bool changed = false;
  for (Kind k : steps_) {
    if (k != Kind::kNfc) continue;
    NormalizedText next;
    if (!nfc_with_alignment(changed ? std::string_view(out.text) : in, next)) continue;
    if (changed) {  // compose with the previous alignment
      for (auto& a : next.align) a = {out.align[a.first].first, out.align[a.second - 1].second};
    }
    out = std::move(next);
    changed = true;
  }
  return changed;
}

namespace {

bool is_hangul_vt(uint32_t c) { return (c >= 0x1161 && c <= 0x1175) || (c >= 0x11A8 && c <= 0x11C2); }

// A character NFC leaves alone whatever surrounds it: combining class 0, maps to itself, and no
// character before it can absorb it.
bool compute_nfc_stable(uint32_t c) {
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
  if (p->combining_class != 0) return false;
  if (p->comp_exclusion) return false;  // NFC decomposes it and never recomposes
  if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return false;
  if (is_hangul_vt(c)) return false;
  if (c >= 0xAC00 && c <= 0xD7A3) return true;  // Hangul syllables are already composed
  if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) return true;
  utf8proc_int32_t buf[8];
  int last = 0;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 8,
                                               UTF8PROC_DECOMPOSE, &last);
  if (n <= 0 || n > 8) return false;
  n = utf8proc_normalize_utf32(buf, n, UTF8PROC_COMPOSE);
  return n == 1 && static_cast<uint32_t>(buf[0]) == c;
}

struct StableTable {
  std::mutex mu;
  std::array<std::atomic<bool>, 0x110000 / 256> ready{};
  std::array<std::unique_ptr<uint8_t[]>, 0x110000 / 256> blocks;
  bool get(uint32_t c) {
    uint32_t b = c >> 8;
    if (!ready[b].load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(mu);
      if (!ready[b].load(std::memory_order_relaxed)) {
        auto t = std::make_unique<uint8_t[]>(256);
        for (uint32_t k = 0; k < 256; ++k) t[k] = compute_nfc_stable(b * 256 + k);
        blocks[b] = std::move(t);
        ready[b].store(true, std::memory_order_release);
      }
    }
    return blocks[b][c & 0xFF] != 0;
  }
};

bool nfc_stable(uint32_t c) {
  if (c < 0x300) return true;  // Latin-1 and Latin Extended: no marks, all composed already
  static StableTable table;
  return table.get(c);
}

int ccc(uint32_t c) { return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class; }

bool compose_pair(uint32_t a, uint32_t b, uint32_t& out) {
  constexpr uint32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
  if (a >= LBase && a < LBase + 19 && b >= VBase && b < VBase + 21) {
    out = SBase + ((a - LBase) * 21 + (b - VBase)) * 28;
    return true;
  }
  if (a >= SBase && a < SBase + 11172 && (a - SBase) % 28 == 0 && b > TBase && b < TBase + 28) {
    out = a + (b - TBase);
    return true;
  }
  const utf8proc_property_t* pb = utf8proc_get_property(static_cast<utf8proc_int32_t>(b));
  if (pb->comb_index == UINT16_MAX || pb->comb_index < 0x8000) return false;
  utf8proc_int32_t buf[2] = {static_cast<utf8proc_int32_t>(a), static_cast<utf8proc_int32_t>(b)};
  if (utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE) != 1) return false;
  if (utf8proc_get_property(buf[0])->comp_exclusion) return false;  // excluded composites stay apart
  out = static_cast<uint32_t>(buf[0]);
  return true;
}

struct Item {
  uint32_t cp;
  int change;  // HF's change count: +1 inserted, -k absorbed k following characters
};

// NFC of one segment [first stable char, next stable char), appended to `out` with alignments;
// `ranges` holds the original byte range of each source character.
void nfc_segment(const std::vector<uint32_t>& cps,
                 const std::vector<std::pair<uint32_t, uint32_t>>& ranges, NormalizedText& out) {
  std::vector<Item> items;
  for (uint32_t c : cps) {
    utf8proc_int32_t buf[32];
    int last = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                                 UTF8PROC_DECOMPOSE, &last);
    if (n <= 0 || n > 32) {
      items.push_back({c, 0});
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) items.push_back({static_cast<uint32_t>(buf[k]), k > 0 ? 1 : 0});
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < items.size();) {
    if (ccc(items[i].cp) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < items.size() && ccc(items[j].cp) != 0) ++j;
    std::stable_sort(items.begin() + i, items.begin() + j,
                     [](const Item& x, const Item& y) { return ccc(x.cp) < ccc(y.cp); });
    i = j;
  }
  // Canonical composition.
  std::vector<Item> res;
  int starter = -1, last_ccc = -1;
  for (const Item& it : items) {
    int cc = ccc(it.cp);
    if (starter >= 0) {
      bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= cc);
      uint32_t comp = 0;
      if (!blocked && compose_pair(res[starter].cp, it.cp, comp)) {
        res[starter].cp = comp;
        res[starter].change += it.change - 1;
        continue;
      }
    }
    if (cc == 0) {
      starter = static_cast<int>(res.size());
      last_ccc = -1;
    } else {
      last_ccc = cc;
    }
    res.push_back(it);
  }
  // Positional alignment, as NormalizedString::transform does.
  size_t pos = 0;
  std::pair<uint32_t, uint32_t> prev = ranges.empty() ? std::make_pair(0u, 0u) : ranges[0];
  for (const Item& it : res) {
    std::pair<uint32_t, uint32_t> a;
    if (it.change > 0) {
      a = pos > 0 ? ranges[pos - 1] : prev;
    } else {
      a = pos < ranges.size() ? ranges[pos] : ranges.back();
      pos += 1 + static_cast<size_t>(-it.change);
    }
    size_t before = out.text.size();
    utf8_append(out.text, it.cp);
    out.align.insert(out.align.end(), out.text.size() - before, a);
  }
}

}  // namespace

bool nfc_with_alignment(std::string_view in, NormalizedText& out) {
  auto p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size(), i = 0, len = 0;
  // Fast scan: is there any character NFC might change?
  size_t first_unstable = n;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    uint32_t c = utf8_decode(p + i, len);
    if (!nfc_stable(c)) {
      first_unstable = i;
      break;
    }
    i += len;
  }
  if (first_unstable == n) return false;

  out.text.clear();
  out.align.clear();
  out.text.reserve(n + 16);
  out.align.reserve(n + 16);
  std::vector<uint32_t> seg;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  bool changed = false, seg_unstable = false;
  auto flush = [&]() {
    if (seg.empty()) return;
    if (!seg_unstable) {  // copy unchanged
      for (auto r : ranges) {
        out.text.append(in.data() + r.first, r.second - r.first);
        out.align.insert(out.align.end(), r.second - r.first, r);
      }
      seg.clear();
      ranges.clear();
      return;
    }
    seg_unstable = false;
    size_t start = out.text.size();
    nfc_segment(seg, ranges, out);
    std::string src;
    for (uint32_t c : seg) utf8_append(src, c);
    if (out.text.compare(start, std::string::npos, src) != 0) changed = true;
    seg.clear();
    ranges.clear();
  };
  i = 0;
  while (i < n) {
    uint32_t c = utf8_decode(p + i, len);
    if (c < 0x80 || nfc_stable(c)) {
      flush();
    } else {
      seg_unstable = true;
    }
    seg.push_back(c);
    ranges.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(i + len)});
    i += len;
  }
  flush();
  if (!changed) {
    out.text.clear();
    out.align.clear();
    return false;
  }
  return true;
}

}  // namespace safekey::text
