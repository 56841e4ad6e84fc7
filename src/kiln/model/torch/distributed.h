// Data-parallel training across processes with torch c10d over gloo. Every process runs
// the same training loop on its shard of the shuffled rows; after each backward pass the
// gradients are averaged across the group, so every process applies the same update and
// holds the same weights. Included only by the plugin's translation units.
#ifndef KILN_MODEL_TORCH_DISTRIBUTED_H_
#define KILN_MODEL_TORCH_DISTRIBUTED_H_

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kiln::model {

class ProcessGroup {
 public:
  // Joins a group of `world_size` processes. `rendezvous` is HOST:PORT (rank 0 runs the
  // key-value store there; the others connect to it) or file:PATH (a file every process
  // can reach, e.g. on a shared file system). `host` is also where this process accepts
  // its peers' connections when it is a loopback address; otherwise the address the
  // machine's hostname resolves to. Errors: kInvalidArgument for a malformed rendezvous
  // or rank; kUnavailable when the group does not form within `timeout`.
  static absl::StatusOr<std::unique_ptr<ProcessGroup>> Join(const std::string& rendezvous, int rank,
                                                            int world_size,
                                                            std::chrono::milliseconds timeout);
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Replaces each parameter's gradient by its mean over the group.
  virtual void AverageGradients(const std::vector<at::Tensor>& params) = 0;
  // Rank 0's `value` under `key`, returned on every rank.
  virtual std::string Share(const std::string& key, const std::string& value) = 0;
  // kFailedPrecondition, on every rank, unless every rank passed the same value (e.g. its
  // row count), naming `what` and the ranks' values.
  virtual absl::Status Agree(const std::string& what, const std::string& value) = 0;
};

}  // namespace kiln::model

#endif  // KILN_MODEL_TORCH_DISTRIBUTED_H_
