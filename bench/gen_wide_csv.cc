// Writes a synthetic CSV of about N megabytes for the statistics benchmark: 20 numeric
// columns (ints and floats from several distributions) and 10 string columns (low and
// high cardinality), with some missing fields. Deterministic for a given size.
//   gen_wide_csv OUT.csv MEGABYTES
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: gen_wide_csv OUT.csv MEGABYTES\n");
    return 2;
  }
  const uint64_t target = std::strtoull(argv[2], nullptr, 10) << 20;
  std::string tmp = std::string(argv[1]) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) {
    std::perror(argv[1]);
    return 1;
  }
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal(100.0, 15.0);
  std::exponential_distribution<double> expo(0.1);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::string line;
  for (int i = 0; i < 20; ++i) line += "n" + std::to_string(i) + ",";
  for (int i = 0; i < 10; ++i) line += "s" + std::to_string(i) + (i == 9 ? "\n" : ",");
  std::fputs(line.c_str(), f);
  uint64_t written = line.size();
  static const char* kWords[] = {"alpha", "bravo", "charlie", "delta",  "echo", "foxtrot",
                                 "golf",  "hotel", "india",   "juliet", "kilo", "lima"};
  char buf[64];
  while (written < target) {
    line.clear();
    for (int c = 0; c < 20; ++c) {
      if (uni(rng) < 0.02) {  // 2% missing
        line += ',';
        continue;
      }
      if (c < 8) {
        snprintf(buf, sizeof buf, "%" PRId64 ",",
                 static_cast<int64_t>(rng() % (c == 0 ? 2 : 100000)));
      } else if (c < 14) {
        snprintf(buf, sizeof buf, "%.4f,", normal(rng) * (c - 7));
      } else {
        snprintf(buf, sizeof buf, "%.3f,", expo(rng));
      }
      line += buf;
    }
    for (int c = 0; c < 10; ++c) {
      if (uni(rng) >= 0.03) {
        if (c < 5) {
          line += kWords[rng() % (2 + c * 2)];  // 2 to 10 distinct words
        } else if (c < 8) {
          snprintf(buf, sizeof buf, "user_%06" PRIu64, rng() % 200000);
          line += buf;
        } else {
          snprintf(buf, sizeof buf, "id-%016" PRIx64, rng());
          line += buf;
        }
      }
      line += (c == 9 ? '\n' : ',');
    }
    std::fputs(line.c_str(), f);
    written += line.size();
  }
  if (std::fclose(f) != 0 || std::rename(tmp.c_str(), argv[1]) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  return 0;
}
