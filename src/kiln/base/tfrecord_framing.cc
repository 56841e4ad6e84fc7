#include "kiln/base/tfrecord_framing.h"

#include "kiln/base/crc32c.h"

namespace kiln::tfrecord {
namespace {

void PutFixed32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutFixed64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

void EncodeHeader(uint64_t length, char* header) {
  PutFixed64(header, length);
  PutFixed32(header + 8, crc32c::Mask(crc32c::Value(header, 8)));
}

void EncodeFooter(std::string_view data, char* footer) {
  PutFixed32(footer, crc32c::Mask(crc32c::Value(data)));
}

void AppendRecord(std::string* out, std::string_view data) {
  char header[kHeaderBytes];
  EncodeHeader(data.size(), header);
  char footer[kFooterBytes];
  EncodeFooter(data, footer);
  out->reserve(out->size() + kHeaderBytes + data.size() + kFooterBytes);
  out->append(header, sizeof(header));
  out->append(data);
  out->append(footer, sizeof(footer));
}

bool DecodeHeader(const char* header, uint64_t* length) {
  if (crc32c::Unmask(GetFixed32(header + 8)) != crc32c::Value(header, 8)) return false;
  *length = GetFixed64(header);
  return true;
}

bool FooterMatches(std::string_view data, const char* footer) {
  return crc32c::Unmask(GetFixed32(footer)) == crc32c::Value(data);
}

}  // namespace kiln::tfrecord
