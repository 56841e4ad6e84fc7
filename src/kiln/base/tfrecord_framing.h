// The framing of one TFRecord, shared by every kiln file in that format (tf.Example
// datasets, TensorBoard event files):
//   uint64 length (little endian) | uint32 masked CRC32C of the 8 length bytes |
//   length bytes of data          | uint32 masked CRC32C of the data
// Pure functions on memory; thread-safe.
#ifndef KILN_BASE_TFRECORD_FRAMING_H_
#define KILN_BASE_TFRECORD_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::tfrecord {

inline constexpr size_t kHeaderBytes = 12;
inline constexpr size_t kFooterBytes = 4;

// Writes the header of a record of `length` data bytes to header[0..12).
void EncodeHeader(uint64_t length, char* header);
// Writes the footer (the data's masked CRC) to footer[0..4).
void EncodeFooter(std::string_view data, char* footer);
// Appends header, data and footer to *out.
void AppendRecord(std::string* out, std::string_view data);

// Reads the data length from header[0..12). Returns false, leaving *length alone, when
// the length does not match its CRC.
bool DecodeHeader(const char* header, uint64_t* length);
// Whether footer[0..4) holds the masked CRC of `data`.
bool FooterMatches(std::string_view data, const char* footer);

}  // namespace kiln::tfrecord

#endif  // KILN_BASE_TFRECORD_FRAMING_H_
