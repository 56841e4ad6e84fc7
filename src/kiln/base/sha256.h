// Incremental SHA-256 (OpenSSL underneath), for content fingerprints. Not thread-safe.
#ifndef KILN_BASE_SHA256_H_
#define KILN_BASE_SHA256_H_

#include <memory>
#include <string>
#include <string_view>

namespace kiln {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  void Update(std::string_view data);
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string Sha256Hex(std::string_view data);

}  // namespace kiln

#endif  // KILN_BASE_SHA256_H_
