#include "kiln/model/torch/distributed.h"

#include <ATen/ATen.h>

#include <charconv>
#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "absl/status/status.h"
#include "kiln/base/str.h"

namespace kiln::model {
namespace {

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

class GlooGroup : public ProcessGroup {
 public:
  GlooGroup(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::ProcessGroupGloo> pg,
            int rank, int size)
      : store_(std::move(store)), pg_(std::move(pg)), rank_(rank), size_(size) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void AverageGradients(const std::vector<at::Tensor>& params) override {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> flat;
    for (const at::Tensor& p : params) {
      // A parameter the forward pass did not reach has no gradient yet: count it as zero
      // so every rank sends tensors of the same layout.
      flat.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}));
    }
    std::vector<at::Tensor> all = {at::cat(flat)};
    pg_->allreduce(all)->wait();
    all[0].div_(static_cast<double>(size_));
    int64_t offset = 0;
    for (const at::Tensor& p : params) {
      at::Tensor mean = all[0].narrow(0, offset, p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(mean);
      } else {
        p.mutable_grad() = mean.clone();
      }
      offset += p.numel();
    }
  }

  std::string Share(const std::string& key, const std::string& value) override {
    const std::string k = StrCat("share/", key);
    if (rank_ == 0) store_->set(k, std::vector<uint8_t>(value.begin(), value.end()));
    std::vector<uint8_t> v = store_->get(k);
    return std::string(v.begin(), v.end());
  }

  absl::Status Agree(const std::string& what, const std::string& value) override {
    store_->set(StrCat("agree/", what, "/", rank_),
                std::vector<uint8_t>(value.begin(), value.end()));
    std::vector<std::string> values;
    bool same = true;
    for (int r = 0; r < size_; ++r) {
      std::vector<uint8_t> v = store_->get(StrCat("agree/", what, "/", r));
      values.emplace_back(v.begin(), v.end());
      same = same && values.back() == values.front();
    }
    if (same) return absl::OkStatus();
    std::string list;
    for (int r = 0; r < size_; ++r) StrAppend(&list, r ? ", " : "", "rank ", r, ": ", values[r]);
    return absl::FailedPreconditionError(
        StrCat("the processes of the group disagree on ", what, " (", list, ")"));
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
  int rank_;
  int size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessGroup>> ProcessGroup::Join(
    const std::string& rendezvous, int rank, int world_size, std::chrono::milliseconds timeout) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return absl::InvalidArgumentError(
        StrCat("--rank must be in [0, ", world_size, ") for --world-size ", world_size));
  }
  std::string host = "127.0.0.1";
  c10::intrusive_ptr<c10d::Store> store;
  try {
    if (rendezvous.rfind("file:", 0) == 0) {
      const std::string path = rendezvous.substr(5);
      if (path.empty()) return absl::InvalidArgumentError("--rendezvous file: needs a path");
      store = c10::make_intrusive<c10d::FileStore>(path, world_size);
    } else {
      const size_t colon = rendezvous.rfind(':');
      int port = 0;
      if (colon == std::string::npos || colon == 0) {
        return absl::InvalidArgumentError(
            StrCat("--rendezvous '", rendezvous, "' is not HOST:PORT or file:PATH"));
      }
      const char* p = rendezvous.data() + colon + 1;
      const char* end = rendezvous.data() + rendezvous.size();
      auto res = std::from_chars(p, end, port);
      if (res.ec != std::errc() || res.ptr != end || port < 1 || port > 65535) {
        return absl::InvalidArgumentError(
            StrCat("--rendezvous '", rendezvous, "': the port must be in [1, 65535]"));
      }
      host = rendezvous.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      c10d::TCPStoreOptions o;
      o.port = static_cast<uint16_t>(port);
      o.isServer = rank == 0;
      o.numWorkers = world_size;
      o.waitWorkers = true;
      o.timeout = timeout;
      store = c10::make_intrusive<c10d::TCPStore>(host, o);
    }
    store->setTimeout(timeout);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(IsLoopback(host)
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname(host)
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("kiln", store);
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world_size, options);
    return std::unique_ptr<ProcessGroup>(new GlooGroup(prefixed, std::move(pg), rank, world_size));
  } catch (const std::exception& e) {
    return absl::UnavailableError(StrCat("joining the training group at ", rendezvous, " as rank ",
                                         rank, " of ", world_size, ": ", e.what()));
  }
}

}  // namespace kiln::model
