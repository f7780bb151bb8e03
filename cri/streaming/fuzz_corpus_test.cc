// Runs a libFuzzer target as a regular test: every file of the corpus
// directories given as arguments, then deterministic mutations of each (bit
// flips, truncations, splices), so the parsers see hostile input on every
// build even where libFuzzer itself is not available (see fuzz.sh).
#include <dirent.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string dir = srcdir != nullptr ? std::string(srcdir) + "/crid/" + argv[i] : argv[i];
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      std::cerr << "cannot open corpus " << dir << "\n";
      return 1;
    }
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') {
        continue;
      }
      std::ifstream in(dir + "/" + e->d_name, std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    closedir(d);
  }
  if (corpus.empty()) {
    std::cerr << "empty corpus\n";
    return 1;
  }
  std::mt19937 rng(1234);
  size_t runs = 0;
  for (const std::string& seed : corpus) {
    Run(seed);
    ++runs;
    for (int round = 0; round < 2000; ++round) {
      std::string input = seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 5) {
          case 0:
            if (!input.empty()) {
              input[rng() % input.size()] ^= static_cast<char>(1u << (rng() % 8));
            }
            break;
          case 1:
            if (!input.empty()) {
              input.resize(rng() % input.size());
            }
            break;
          case 2:
            if (!input.empty()) {
              input[rng() % input.size()] = static_cast<char>(rng());
            }
            break;
          case 3: {
            const std::string& other = corpus[rng() % corpus.size()];
            input += other.substr(rng() % (other.size() + 1));
            break;
          }
          default:
            input.insert(input.begin() + static_cast<long>(rng() % (input.size() + 1)),
                         static_cast<char>(rng()));
            break;
        }
      }
      Run(input);
      ++runs;
    }
  }
  std::cout << "ran " << runs << " inputs from " << corpus.size() << " corpus files\n";
  return 0;
}
