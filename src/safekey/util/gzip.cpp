#include "safekey/util/gzip.h"

#include <zlib.h>

#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {

bool is_gzip_path(const std::string& path) {
  return path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
}

std::string read_gzip_file(const std::string& path) {
  const std::string packed = read_file(path);
  z_stream zs{};
  // 16 + MAX_WBITS: gzip header and trailer (CRC) checked by zlib.
  SK_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, path, ": zlib init failed");
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  zs.avail_in = static_cast<uInt>(packed.size());
  char buf[1 << 16];
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc != Z_OK) break;
    if (zs.avail_in == 0 && zs.avail_out != 0) break;  // input ended inside a member
  }
  const std::string why =
      rc == Z_OK || rc == Z_BUF_ERROR ? "truncated" : (zs.msg ? zs.msg : "corrupt data");
  inflateEnd(&zs);
  SK_CHECK(rc == Z_STREAM_END, path, ": not a valid gzip file (", why, ")");
  return out;
}

}  // namespace safekey
