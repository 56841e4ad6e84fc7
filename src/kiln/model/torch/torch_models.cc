// Neural models on libtorch: `linear`, `mlp`, `wide_deep` and `cnn`. This is the only
// translation unit that includes libtorch headers (they are slow to compile); every
// libtorch call that can throw is caught here and returned as a Status.
//
// Inputs are the transform's outputs: the dense float columns and the categorical ids
// (each column with its cardinality; crosses are categorical columns too).
//  - linear: logistic (binary), softmax (multiclass) or linear (regression) over the dense
//    columns and a one-hot encoding of every categorical column (a weight per id and
//    output, stored as an embedding table of width num_outputs).
//  - mlp: the "deep" tower: dense columns concatenated with one embedding per categorical
//    column, then hidden_units fully connected layers, then the output layer.
//  - wide_deep: linear ("wide", memorising ids and crosses) + mlp ("deep", generalising
//    through embeddings), their logits summed and trained jointly (Cheng et al., 2016).
//  - cnn: the first height*width*channels dense columns are an image (row-major, channels
//    interleaved: pixel (y, x) channel c is column (y*width + x)*channels + c); each of
//    conv_channels is a kernel_size x kernel_size convolution ("same" padding) and
//    activation, followed by 2x2 max pooling while both sides are >= 2. The flattened
//    maps, the remaining dense columns and the categorical embeddings go through the
//    mlp tower. (The default transform z-scores each pixel column; that is fine.)
//
// Params (the `model:` section), with defaults:
//   optimizer: adam | sgd | adagrad | ftrl (adam)
//   learning_rate: adam 0.01, sgd 0.01, adagrad 0.05, ftrl 0.1
//   momentum: sgd only (0.9)
//   l1, lr_power, beta: ftrl only (0, -0.5, 1): FTRL-Proximal (McMahan et al., 2013), per
//     coordinate  n += g^2;  sigma = (n^-lr_power - n_old^-lr_power) / lr;  z += g - sigma w;
//     w = 0 if |z| <= l1, else -(z - sign(z) l1) / ((beta + n^-lr_power) / lr + l2).
//     z starts where that formula gives the initial weights.
//   l2: L2 penalty (0): 0.5 * l2 * sum of squared weights (not biases) added to the loss,
//     or FTRL's own l2 term.
//   batch_size (256), epochs (20)
//   hidden_units ([64, 32]), dropout (0), activation: relu | tanh (relu),
//   embedding_dim (per column min(16, round(6 * cardinality^0.25))): mlp, wide_deep, cnn
//   image: {height, width, channels (1)} (required), conv_channels ([16, 32]),
//     kernel_size (3): cnn only
// A parameter that does not apply to the model type or optimizer is an error.
//
// Training: the loss is binary cross-entropy on logits, softmax cross-entropy, or squared
// error (regression targets are standardised on the train rows and predictions mapped
// back), each row weighted by Examples::weights. Mini-batches of a shuffled order
// (std::mt19937_64 seeded with the seed, reshuffled every epoch); weights initialised
// after torch::manual_seed(seed); a fixed thread count, so a run is repeatable bit for bit.
// The eval rows are scored every eval_every steps (one step = one mini-batch) and at
// the end of every epoch; with patience > 0 training stops after `patience` evaluations
// without improvement and the best weights are restored.
//
// Prediction: a batch of a few rows of linear, mlp or wide_deep (at most 32, fewer for wide
// networks) is computed in plain C++ (NativeNet) from weights copied out of the network
// once, when the model is built (after training or loading): libtorch's dispatch of a small
// network's operators costs ~30 us a call, the arithmetic ~1 us a row. The scores agree
// with libtorch's to float rounding. Larger batches, and cnn, go through libtorch.
//
// Bundle files: model/arch.json (what is needed to rebuild the network) and
// model/weights.pt (torch::serialize::OutputArchive of its parameters and buffers).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/ivalue.h>
#include <torch/nn.h>
#include <torch/optim.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/model/model.h"
#include "kiln/model/torch/distributed.h"

namespace kiln::model {
namespace {

constexpr const char* kWeightsFile = "model/weights.pt";
constexpr const char* kArchFile = "model/arch.json";
constexpr const char* kArchFormat = "kiln.torch";
constexpr int kArchVersion = 1;
constexpr int64_t kPredictBatch = 8192;
// NativeNet scores a batch of linear, mlp or wide_deep of at most kNativeMaxRows rows and
// kNativeMaxMultiplyAdds in all; libtorch the others. Measured on a wide & deep network
// (hidden 128, 64: 14k multiply-adds a row), NativeNet takes 1 us a row and libtorch 30 us
// plus 0.5 us a row; on wider networks libtorch's matrix products (weights loaded once for
// all rows) overtake it from about 2M multiply-adds (hidden 512, 256: 12 rows).
constexpr size_t kNativeMaxRows = 32;
constexpr int64_t kNativeMaxMultiplyAdds = 2'000'000;
constexpr const char* kCheckpointFormat = "kiln.torch.checkpoint.1";
// How long a process waits for the others: to form the group, then at each step.
constexpr std::chrono::milliseconds kGroupTimeout = std::chrono::minutes(5);

bool HasWide(const std::string& type) { return type == "linear" || type == "wide_deep"; }
bool HasDeep(const std::string& type) { return type != "linear"; }

// Everything needed to rebuild the network (stored as model/arch.json).
struct Arch {
  std::string type;
  Task task = Task::kBinary;
  int64_t num_outputs = 1;
  int64_t dense_dim = 0;
  std::vector<int64_t> cardinalities;   // per categorical column
  std::vector<int64_t> embedding_dims;  // deep tower, per categorical column
  std::vector<int64_t> hidden_units;
  double dropout = 0;
  std::string activation = "relu";
  int64_t height = 0, width = 0, channels = 0;  // cnn
  std::vector<int64_t> conv_channels;
  int64_t kernel_size = 3;
  double target_mean = 0, target_std = 1;  // regression: predictions * std + mean

  int64_t image_size() const { return height * width * channels; }

  nlohmann::json ToJson() const {
    nlohmann::json j = {{"format", kArchFormat},
                        {"version", kArchVersion},
                        {"type", type},
                        {"task", std::string(TaskName(task))},
                        {"num_outputs", num_outputs},
                        {"dense_dim", dense_dim},
                        {"cardinalities", cardinalities},
                        {"embedding_dims", embedding_dims},
                        {"hidden_units", hidden_units},
                        {"dropout", dropout},
                        {"activation", activation},
                        {"target_mean", target_mean},
                        {"target_std", target_std}};
    if (type == "cnn") {
      j["image"] = {{"height", height}, {"width", width}, {"channels", channels}};
      j["conv_channels"] = conv_channels;
      j["kernel_size"] = kernel_size;
    }
    return j;
  }

  // Errors: kDataLoss for a malformed file.
  static absl::StatusOr<Arch> FromJson(std::string_view text) {
    try {
      nlohmann::json j = nlohmann::json::parse(text);
      if (j.value("format", "") != kArchFormat) {
        return absl::DataLossError(StrCat(kArchFile, ": not a ", kArchFormat, " file"));
      }
      if (j.at("version").get<int>() > kArchVersion) {
        return absl::FailedPreconditionError(
            StrCat(kArchFile, ": version ", j.at("version").get<int>(),
                   " is newer than this kiln reads (", kArchVersion, ")"));
      }
      Arch a;
      a.type = j.at("type").get<std::string>();
      auto task = ParseTask(j.at("task").get<std::string>());
      if (!task.ok()) return absl::DataLossError(StrCat(kArchFile, ": ", task.status().message()));
      a.task = *task;
      a.num_outputs = j.at("num_outputs").get<int64_t>();
      a.dense_dim = j.at("dense_dim").get<int64_t>();
      a.cardinalities = j.at("cardinalities").get<std::vector<int64_t>>();
      a.embedding_dims = j.at("embedding_dims").get<std::vector<int64_t>>();
      a.hidden_units = j.at("hidden_units").get<std::vector<int64_t>>();
      a.dropout = j.at("dropout").get<double>();
      a.activation = j.at("activation").get<std::string>();
      a.target_mean = j.at("target_mean").get<double>();
      a.target_std = j.at("target_std").get<double>();
      if (a.type == "cnn") {
        a.height = j.at("image").at("height").get<int64_t>();
        a.width = j.at("image").at("width").get<int64_t>();
        a.channels = j.at("image").at("channels").get<int64_t>();
        a.conv_channels = j.at("conv_channels").get<std::vector<int64_t>>();
        a.kernel_size = j.at("kernel_size").get<int64_t>();
      }
      return a;
    } catch (const std::exception& e) {
      return absl::DataLossError(StrCat(kArchFile, ": ", e.what()));
    }
  }
};

// The network: optional wide part (linear over dense columns and one-hot ids), optional
// deep tower (convolutions for cnn, embeddings, hidden layers); logits are their sum.
class NetImpl : public torch::nn::Module {
 public:
  explicit NetImpl(const Arch& a) : a_(a) {
    if (HasWide(a.type)) {
      wide_bias_ = register_parameter("wide_bias", torch::zeros({a.num_outputs}));
      if (a.dense_dim > 0) {
        wide_dense_ = register_module(
            "wide_dense",
            torch::nn::Linear(torch::nn::LinearOptions(a.dense_dim, a.num_outputs).bias(false)));
        torch::nn::init::zeros_(wide_dense_->weight);
      }
      if (!a.cardinalities.empty()) {
        std::vector<int64_t> offsets;
        int64_t total = 0;
        for (int64_t c : a.cardinalities) {
          offsets.push_back(total);
          total += c;
        }
        wide_offsets_ = torch::tensor(offsets, torch::kInt64);
        wide_ids_ = register_module("wide_ids", torch::nn::Embedding(total, a.num_outputs));
        torch::nn::init::zeros_(wide_ids_->weight);
      }
    }
    if (!HasDeep(a.type)) return;
    int64_t in = a.dense_dim;
    if (a.type == "cnn") {
      in -= a.image_size();
      int64_t c = a.channels, h = a.height, w = a.width;
      for (size_t i = 0; i < a.conv_channels.size(); ++i) {
        convs_.push_back(register_module(
            StrCat("conv", i),
            torch::nn::Conv2d(torch::nn::Conv2dOptions(c, a.conv_channels[i], a.kernel_size)
                                  .padding(a.kernel_size / 2))));
        c = a.conv_channels[i];
        // "Same" padding keeps odd kernels' maps the size of their input.
        h = h + 2 * (a.kernel_size / 2) - a.kernel_size + 1;
        w = w + 2 * (a.kernel_size / 2) - a.kernel_size + 1;
        bool pool = h >= 2 && w >= 2;
        pools_.push_back(pool);
        if (pool) h /= 2, w /= 2;
      }
      in += c * h * w;
    }
    for (size_t j = 0; j < a.cardinalities.size(); ++j) {
      auto e = register_module(StrCat("embedding", j),
                               torch::nn::Embedding(a.cardinalities[j], a.embedding_dims[j]));
      torch::nn::init::normal_(e->weight, 0,
                               1 / std::sqrt(static_cast<double>(a.embedding_dims[j])));
      embeddings_.push_back(e);
      in += a.embedding_dims[j];
    }
    for (size_t i = 0; i < a.hidden_units.size(); ++i) {
      hidden_.push_back(
          register_module(StrCat("hidden", i), torch::nn::Linear(in, a.hidden_units[i])));
      in = a.hidden_units[i];
    }
    deep_out_ = register_module("deep_out", torch::nn::Linear(in, a.num_outputs));
  }

  // Logits [rows, num_outputs] for dense [rows, dense_dim] and ids [rows, columns].
  torch::Tensor forward(const torch::Tensor& dense, const torch::Tensor& ids) {
    const int64_t rows = dense.size(0);
    torch::Tensor logits;  // the wide part's, when there is one
    if (HasWide(a_.type)) {
      logits =
          wide_dense_ ? wide_dense_(dense) + wide_bias_ : wide_bias_.expand({rows, a_.num_outputs});
      if (wide_ids_) logits = logits + wide_ids_(ids + wide_offsets_).sum(1);
    }
    if (!HasDeep(a_.type)) return logits;
    std::vector<torch::Tensor> parts;
    int64_t dense_from = 0;
    if (a_.type == "cnn") {
      torch::Tensor x = dense.narrow(1, 0, a_.image_size())
                            .reshape({rows, a_.height, a_.width, a_.channels})
                            .permute({0, 3, 1, 2});
      // The rows are pixels with channels interleaved: already the channels-last layout.
      // Predicting batches, oneDNN's convolutions run about twice as fast on it (a batch of
      // 32 8x8 digits: 347 -> 177 us, the same scores); training keeps NCHW.
      x = !is_training() && rows > 1 ? x.contiguous(at::MemoryFormat::ChannelsLast)
                                     : x.contiguous();
      for (size_t i = 0; i < convs_.size(); ++i) {
        x = Activate(convs_[i](x));
        if (pools_[i]) x = torch::max_pool2d(x, {2, 2});
      }
      parts.push_back(x.flatten(1));
      dense_from = a_.image_size();
    }
    if (a_.dense_dim > dense_from)
      parts.push_back(dense.narrow(1, dense_from, a_.dense_dim - dense_from));
    for (size_t j = 0; j < embeddings_.size(); ++j)
      parts.push_back(embeddings_[j](ids.select(1, j)));
    torch::Tensor h = parts.empty() ? torch::zeros({rows, 0}) : torch::cat(parts, 1);
    for (auto& layer : hidden_) {
      h = Activate(layer(h));
      if (a_.dropout > 0) h = torch::dropout(h, a_.dropout, is_training());
    }
    torch::Tensor deep = deep_out_(h);
    return logits.defined() ? logits + deep : deep;
  }

  // The bias a constant prediction would use: set to the label prior before training.
  torch::Tensor output_bias() { return HasWide(a_.type) ? wide_bias_ : deep_out_->bias; }

 private:
  torch::Tensor Activate(const torch::Tensor& x) const {
    return a_.activation == "tanh" ? torch::tanh(x) : torch::relu(x);
  }

  Arch a_;
  torch::Tensor wide_bias_;
  torch::Tensor wide_offsets_;  // first wide_ids_ row of each categorical column
  torch::nn::Linear wide_dense_{nullptr};
  torch::nn::Embedding wide_ids_{nullptr};
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<bool> pools_;
  std::vector<torch::nn::Embedding> embeddings_;
  std::vector<torch::nn::Linear> hidden_;
  torch::nn::Linear deep_out_{nullptr};
};
TORCH_MODULE(Net);

// Optimizer settings from the params.
struct OptimizerConfig {
  std::string name = "adam";
  double learning_rate = 0.01;
  double momentum = 0.9;
  double l1 = 0, l2 = 0, lr_power = -0.5, beta = 1;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void ZeroGrad() = 0;
  virtual void Step() = 0;
  // The optimizer's state (moments, accumulators), for checkpoints.
  virtual void Save(torch::serialize::OutputArchive& archive) const = 0;
  virtual void Load(torch::serialize::InputArchive& archive) = 0;
};

class TorchOptimizer : public Optimizer {
 public:
  explicit TorchOptimizer(std::unique_ptr<torch::optim::Optimizer> o) : o_(std::move(o)) {}
  void ZeroGrad() override { o_->zero_grad(); }
  void Step() override { o_->step(); }
  void Save(torch::serialize::OutputArchive& archive) const override { o_->save(archive); }
  void Load(torch::serialize::InputArchive& archive) override { o_->load(archive); }

 private:
  std::unique_ptr<torch::optim::Optimizer> o_;
};

// Adam over all parameters at once: the parameters become views into one flat buffer, and
// a step is a handful of operations on flat tensors instead of a dozen per parameter (the
// update is torch::optim::Adam's, element for element: betas 0.9, 0.999, eps 1e-8).
class FlatAdam : public Optimizer {
 public:
  FlatAdam(std::vector<torch::Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
    int64_t total = 0;
    for (const torch::Tensor& p : params_) total += p.numel();
    flat_ = torch::empty({total});
    Bind();
    m_ = torch::zeros({total});
    v_ = torch::zeros({total});
  }
  void ZeroGrad() override {
    // Undefined gradients: backward then stores fresh ones instead of adding to zeros.
    for (torch::Tensor& p : params_) p.mutable_grad().reset();
  }
  void Step() override {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    grads.reserve(params_.size());
    for (const torch::Tensor& p : params_) {
      grads.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}));
    }
    const torch::Tensor g = torch::cat(grads);
    ++t_;
    const double bc1 = 1 - std::pow(kBeta1, static_cast<double>(t_));
    const double bc2 = 1 - std::pow(kBeta2, static_cast<double>(t_));
    m_.mul_(kBeta1).add_(g, 1 - kBeta1);
    v_.mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
    const torch::Tensor denom = (v_.sqrt() / std::sqrt(bc2)).add_(kEps);
    flat_.addcdiv_(m_, denom, -lr_ / bc1);
  }
  void Save(torch::serialize::OutputArchive& archive) const override {
    archive.write("m", m_, /*is_buffer=*/true);
    archive.write("v", v_, /*is_buffer=*/true);
    archive.write("t", c10::IValue(t_));
  }
  void Load(torch::serialize::InputArchive& archive) override {
    archive.read("m", m_, /*is_buffer=*/true);
    archive.read("v", v_, /*is_buffer=*/true);
    c10::IValue t;
    archive.read("t", t);
    t_ = t.toInt();
    // Loading the network's weights replaced the parameters' storage: bind them again.
    Bind();
  }
  // Gives each parameter storage of its own again (for saving the trained network).
  void Unbind() {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : params_) p.set_data(p.detach().clone());
  }

 private:
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;

  // Copies the parameters' values into the flat buffer and makes them views of it.
  void Bind() {
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (torch::Tensor& p : params_) {
      torch::Tensor slot = flat_.narrow(0, offset, p.numel());
      slot.copy_(p.detach().reshape({-1}));
      p.set_data(slot.view(p.sizes()));
      offset += p.numel();
    }
  }

  std::vector<torch::Tensor> params_;
  double lr_;
  torch::Tensor flat_, m_, v_;
  int64_t t_ = 0;
};

// FTRL-Proximal, per coordinate (formula at the top of the file).
class Ftrl : public Optimizer {
 public:
  Ftrl(std::vector<torch::Tensor> params, const OptimizerConfig& c)
      : params_(std::move(params)), c_(c) {
    torch::NoGradGuard no_grad;
    // With n = 0 the update gives w = -(z - sign(z) l1) / d0: start z where that is the
    // initial weight, so FTRL starts from the network's initialisation.
    const double d0 = (c.beta + (c.lr_power == 0 ? 1.0 : 0.0)) / c.learning_rate + c.l2;
    for (const torch::Tensor& p : params_) {
      n_.push_back(torch::zeros_like(p));
      z_.push_back(-(p * d0 + torch::sign(p) * c.l1));
    }
  }
  void ZeroGrad() override {
    for (torch::Tensor& p : params_) {
      if (p.grad().defined()) p.grad().zero_();
    }
  }
  void Step() override {
    torch::NoGradGuard no_grad;
    const double power = -c_.lr_power;
    for (size_t i = 0; i < params_.size(); ++i) {
      torch::Tensor& w = params_[i];
      if (!w.grad().defined()) continue;
      const torch::Tensor& g = w.grad();
      torch::Tensor n_new = n_[i] + g * g;
      torch::Tensor root_new = n_new.pow(power);
      torch::Tensor sigma = (root_new - n_[i].pow(power)) / c_.learning_rate;
      z_[i].add_(g - sigma * w);
      n_[i] = n_new;
      torch::Tensor shrunk = z_[i] - torch::sign(z_[i]) * c_.l1;
      torch::Tensor denom = (root_new + c_.beta) / c_.learning_rate + c_.l2;
      w.copy_(torch::where(z_[i].abs() <= c_.l1, torch::zeros_like(w), -shrunk / denom));
    }
  }
  void Save(torch::serialize::OutputArchive& archive) const override {
    for (size_t i = 0; i < params_.size(); ++i) {
      archive.write(StrCat("n", i), n_[i], /*is_buffer=*/true);
      archive.write(StrCat("z", i), z_[i], /*is_buffer=*/true);
    }
  }
  void Load(torch::serialize::InputArchive& archive) override {
    for (size_t i = 0; i < params_.size(); ++i) {
      archive.read(StrCat("n", i), n_[i], /*is_buffer=*/true);
      archive.read(StrCat("z", i), z_[i], /*is_buffer=*/true);
    }
  }

 private:
  std::vector<torch::Tensor> params_;
  OptimizerConfig c_;
  std::vector<torch::Tensor> n_, z_;
};

std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& c,
                                         std::vector<torch::Tensor> params) {
  if (c.name == "ftrl") return std::make_unique<Ftrl>(std::move(params), c);
  std::unique_ptr<torch::optim::Optimizer> o;
  if (c.name == "sgd") {
    o = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(c.learning_rate).momentum(c.momentum));
  } else if (c.name == "adagrad") {
    o = std::make_unique<torch::optim::Adagrad>(params,
                                                torch::optim::AdagradOptions(c.learning_rate));
  } else {
    return std::make_unique<FlatAdam>(std::move(params), c.learning_rate);
  }
  return std::make_unique<TorchOptimizer>(std::move(o));
}

// Reads the `model:` params, remembering which keys were asked for, so that a key no
// reader asked for (a typo, or one for another model type or optimizer) is reported.
class ParamReader {
 public:
  explicit ParamReader(const nlohmann::json& p) : p_(p) {}

  bool Has(const std::string& key) {
    known_.insert(key);
    return p_.contains(key);
  }

  // A number in [lo, hi] (lo excluded when lo_open); integer when `integer`.
  absl::StatusOr<double> Number(const std::string& key, double def, double lo, double hi,
                                bool lo_open = false, bool integer = false) {
    if (!Has(key)) return def;
    return CheckNumber(key, p_[key], lo, hi, lo_open, integer);
  }
  absl::StatusOr<int64_t> Int(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
    KILN_ASSIGN_OR_RETURN(double v, Number(key, static_cast<double>(def), static_cast<double>(lo),
                                           static_cast<double>(hi), false, true));
    return static_cast<int64_t>(v);
  }
  absl::StatusOr<std::string> OneOf(const std::string& key, const std::string& def,
                                    const std::vector<std::string>& allowed) {
    if (!Has(key)) return def;
    const nlohmann::json& v = p_[key];
    if (v.is_string() &&
        std::find(allowed.begin(), allowed.end(), v.get<std::string>()) != allowed.end()) {
      return v.get<std::string>();
    }
    return absl::InvalidArgumentError(
        StrCat("model.", key, " must be one of ", StrJoin(allowed, ", "), "; got ", v.dump()));
  }
  absl::StatusOr<std::vector<int64_t>> IntList(const std::string& key, std::vector<int64_t> def,
                                               int64_t lo, int64_t hi) {
    if (!Has(key)) return def;
    const nlohmann::json& v = p_[key];
    if (!v.is_array()) {
      return absl::InvalidArgumentError(StrCat("model.", key, " must be a list of integers"));
    }
    std::vector<int64_t> out;
    for (const nlohmann::json& e : v) {
      KILN_ASSIGN_OR_RETURN(double d, CheckNumber(key, e, static_cast<double>(lo),
                                                  static_cast<double>(hi), false, true));
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  }
  const nlohmann::json& Get(const std::string& key) {
    known_.insert(key);
    return p_[key];
  }

  // Errors: kInvalidArgument for a key no reader asked for, listing those that apply.
  absl::Status CheckNoOthers(std::string_view context) const {
    for (const auto& [key, value] : p_.items()) {
      if (key == "type" || known_.count(key)) continue;
      std::vector<std::string> names(known_.begin(), known_.end());
      return absl::InvalidArgumentError(StrCat("model.", key, " is not a parameter of ", context,
                                               " (parameters: ", StrJoin(names, ", "), ")"));
    }
    return absl::OkStatus();
  }

 private:
  static absl::StatusOr<double> CheckNumber(const std::string& key, const nlohmann::json& v,
                                            double lo, double hi, bool lo_open, bool integer) {
    const std::string range = StrCat(
        lo_open ? "(" : "[", lo, ", ",
        hi == std::numeric_limits<double>::infinity() ? std::string("inf)") : StrCat(hi, "]"));
    const std::string what = integer ? "an integer" : "a number";
    if (!v.is_number()) {
      return absl::InvalidArgumentError(
          StrCat("model.", key, " must be ", what, " in ", range, "; got ", v.dump()));
    }
    double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || (lo_open && d == lo) || d > hi ||
        (integer && d != std::floor(d))) {
      return absl::InvalidArgumentError(
          StrCat("model.", key, " must be ", what, " in ", range, "; got ", v.dump()));
    }
    return d;
  }

  const nlohmann::json& p_;
  std::set<std::string> known_;
};

struct Hyper {
  Arch arch;
  OptimizerConfig optimizer;
  int64_t batch_size = 256;
  int64_t epochs = 20;
};

absl::StatusOr<Hyper> ParseParams(const std::string& type, const TrainOptions& options,
                                  const transform::OutputSignature& signature) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  Hyper h;
  Arch& a = h.arch;
  a.type = type;
  a.task = options.task;
  a.num_outputs = options.task == Task::kMulticlass ? options.num_classes : 1;
  if (options.task == Task::kMulticlass && options.num_classes < 2) {
    return absl::InvalidArgumentError("multiclass needs at least two classes");
  }
  a.dense_dim = static_cast<int64_t>(signature.dense.size());
  for (const transform::OutputColumn& c : signature.categorical) {
    a.cardinalities.push_back(std::max<int64_t>(c.cardinality, 1));
  }
  ParamReader r(options.params);
  OptimizerConfig& o = h.optimizer;
  KILN_ASSIGN_OR_RETURN(o.name, r.OneOf("optimizer", "adam", {"adam", "sgd", "adagrad", "ftrl"}));
  const double default_lr = o.name == "adagrad" ? 0.05 : o.name == "ftrl" ? 0.1 : 0.01;
  KILN_ASSIGN_OR_RETURN(o.learning_rate, r.Number("learning_rate", default_lr, 0, kInf, true));
  KILN_ASSIGN_OR_RETURN(o.l2, r.Number("l2", 0, 0, kInf));
  if (o.name == "sgd") {
    KILN_ASSIGN_OR_RETURN(o.momentum, r.Number("momentum", 0.9, 0, 1));
  }
  if (o.name == "ftrl") {
    KILN_ASSIGN_OR_RETURN(o.l1, r.Number("l1", 0, 0, kInf));
    KILN_ASSIGN_OR_RETURN(o.lr_power, r.Number("lr_power", -0.5, -kInf, 0));
    KILN_ASSIGN_OR_RETURN(o.beta, r.Number("beta", 1, 0, kInf, true));
  }
  KILN_ASSIGN_OR_RETURN(h.batch_size, r.Int("batch_size", 256, 1, int64_t{1} << 24));
  KILN_ASSIGN_OR_RETURN(h.epochs, r.Int("epochs", 20, 1, 1000000));
  if (HasDeep(type)) {
    KILN_ASSIGN_OR_RETURN(a.hidden_units, r.IntList("hidden_units", {64, 32}, 1, 1 << 20));
    KILN_ASSIGN_OR_RETURN(a.dropout, r.Number("dropout", 0, 0, 0.99));
    KILN_ASSIGN_OR_RETURN(a.activation, r.OneOf("activation", "relu", {"relu", "tanh"}));
    int64_t fixed_dim = 0;
    if (r.Has("embedding_dim")) {
      KILN_ASSIGN_OR_RETURN(fixed_dim, r.Int("embedding_dim", 0, 1, 1 << 16));
    }
    for (int64_t card : a.cardinalities) {
      a.embedding_dims.push_back(
          fixed_dim > 0 ? fixed_dim
                        : std::clamp<int64_t>(
                              std::lround(6 * std::pow(static_cast<double>(card), 0.25)), 1, 16));
    }
  }
  if (type == "cnn") {
    if (!r.Has("image")) {
      return absl::InvalidArgumentError(
          "model.image is required for model type cnn: {height, width, channels}");
    }
    const nlohmann::json& img = r.Get("image");
    if (!img.is_object()) {
      return absl::InvalidArgumentError("model.image must be a map {height, width, channels}");
    }
    ParamReader ir(img);
    auto image_int = [&](const char* key, int64_t def) -> absl::StatusOr<int64_t> {
      if (def == 0 && !img.contains(key)) {
        return absl::InvalidArgumentError(StrCat("model.image.", key, " is required"));
      }
      auto v = ir.Int(key, def, 1, 1 << 16);
      if (!v.ok()) {
        return absl::InvalidArgumentError(StrCat("model.image.", key, " must be an integer >= 1"));
      }
      return v;
    };
    KILN_ASSIGN_OR_RETURN(a.height, image_int("height", 0));
    KILN_ASSIGN_OR_RETURN(a.width, image_int("width", 0));
    KILN_ASSIGN_OR_RETURN(a.channels, image_int("channels", 1));
    for (const auto& [key, value] : img.items()) {
      if (key != "height" && key != "width" && key != "channels") {
        return absl::InvalidArgumentError(
            StrCat("model.image.", key, " is not a key of model.image (height, width, channels)"));
      }
    }
    if (a.image_size() > a.dense_dim) {
      return absl::InvalidArgumentError(
          StrCat("model.image is ", a.height, "x", a.width, "x", a.channels, " = ", a.image_size(),
                 " values, but the transform outputs ", a.dense_dim, " dense columns"));
    }
    KILN_ASSIGN_OR_RETURN(a.conv_channels, r.IntList("conv_channels", {16, 32}, 1, 1 << 14));
    KILN_ASSIGN_OR_RETURN(a.kernel_size, r.Int("kernel_size", 3, 1, 15));
    if (a.kernel_size % 2 == 0) {
      return absl::InvalidArgumentError(
          StrCat("model.kernel_size must be odd (\"same\" padding); got ", a.kernel_size));
    }
  }
  KILN_RETURN_IF_ERROR(r.CheckNoOthers(StrCat("model type ", type, " with optimizer ", o.name)));
  if (a.dense_dim == 0 && a.cardinalities.empty()) {
    return absl::InvalidArgumentError("the transform outputs no features");
  }
  return h;
}

// Model inputs as tensors (sharing the batch's memory: read only).
struct Inputs {
  torch::Tensor dense;  // [rows, dense_dim] float32
  torch::Tensor ids;    // [rows, columns] int64
};

// Checks `x` before either prediction path reads it. Errors: kInvalidArgument when `x`
// does not have the shape the network was built for, or an id is outside its column's
// cardinality.
absl::Status CheckInputs(const Arch& a, const transform::TransformedBatch& x) {
  if (static_cast<int64_t>(x.dense_dim) != a.dense_dim ||
      x.num_categorical != a.cardinalities.size()) {
    return absl::InvalidArgumentError(StrCat("the model takes ", a.dense_dim, " dense and ",
                                             a.cardinalities.size(), " categorical columns; got ",
                                             x.dense_dim, " and ", x.num_categorical));
  }
  const int64_t rows = static_cast<int64_t>(x.num_rows);
  const int64_t cols = static_cast<int64_t>(x.num_categorical);
  if (x.dense.size() != x.num_rows * x.dense_dim ||
      x.ids.size() != x.num_rows * x.num_categorical) {
    return absl::InvalidArgumentError(StrCat("a batch of ", rows, " rows holds ", x.dense.size(),
                                             " dense values and ", x.ids.size(), " ids"));
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      int64_t id = x.ids[r * cols + c];
      if (id < 0 || id >= a.cardinalities[c]) {
        return absl::InvalidArgumentError(StrCat("categorical column ", c, " has id ", id,
                                                 " in row ", r, "; its cardinality is ",
                                                 a.cardinalities[c]));
      }
    }
  }
  return absl::OkStatus();
}

// Errors: as CheckInputs.
absl::StatusOr<Inputs> MakeInputs(const Arch& a, const transform::TransformedBatch& x) {
  KILN_RETURN_IF_ERROR(CheckInputs(a, x));
  const int64_t rows = static_cast<int64_t>(x.num_rows);
  const int64_t cols = static_cast<int64_t>(x.num_categorical);
  Inputs in;
  in.dense = rows * a.dense_dim == 0 ? torch::zeros({rows, a.dense_dim})
                                     : torch::from_blob(const_cast<float*>(x.dense.data()),
                                                        {rows, a.dense_dim}, torch::kFloat32);
  in.ids = rows * cols == 0
               ? torch::zeros({rows, cols}, torch::kInt64)
               : torch::from_blob(const_cast<int64_t*>(x.ids.data()), {rows, cols}, torch::kInt64);
  // A value the transform left missing (a passed-through number) is NaN: read it as 0.
  if (std::any_of(x.dense.begin(), x.dense.end(), [](float v) { return std::isnan(v); })) {
    in.dense = in.dense.masked_fill(in.dense.isnan(), 0.0);
  }
  return in;
}

// Scores as Model::Predict defines them, for logits [rows, num_outputs].
torch::Tensor Scores(const Arch& a, const torch::Tensor& logits) {
  switch (a.task) {
    case Task::kBinary:
      return torch::sigmoid(logits.squeeze(1));
    case Task::kMulticlass:
      return torch::softmax(logits, 1);
    case Task::kRegression:
      return logits.squeeze(1) * a.target_std + a.target_mean;
  }
  return logits;
}

// Scores of every row, in batches, in eval mode without gradients.
void PredictRows(const Arch& a, Net& net, const Inputs& in, std::vector<float>* out) {
  torch::NoGradGuard no_grad;
  const int64_t rows = in.dense.size(0);
  out->clear();
  out->reserve(static_cast<size_t>(rows * (a.task == Task::kMulticlass ? a.num_outputs : 1)));
  for (int64_t start = 0; start < rows; start += kPredictBatch) {
    const int64_t n = std::min(kPredictBatch, rows - start);
    torch::Tensor s =
        Scores(a, net->forward(in.dense.narrow(0, start, n), in.ids.narrow(0, start, n)))
            .contiguous();
    const float* p = s.data_ptr<float>();
    out->insert(out->end(), p, p + s.numel());
  }
}

absl::Status TorchError(std::string_view what, const std::exception& e) {
  return absl::InternalError(StrCat("libtorch: ", what, ": ", e.what()));
}

// The forward pass and scores of a linear, mlp or wide_deep network in plain C++, for a few
// rows: libtorch spends tens of microseconds dispatching the dozen operators of a small
// network, most of a one-row prediction, where the arithmetic takes a few. The weights are
// copied out of the final eval-mode network; each Linear's weight is stored transposed,
// [in][out], so that the inner loop runs over contiguous outputs and vectorises. Scores
// are NetImpl::forward's and Scores' but for float rounding (the order of the sums).
// Thread-safe: immutable after construction; a call's buffers are its thread's.
class NativeNet {
 public:
  // From a network built from `a`. Null for a type it does not compute (cnn).
  static std::unique_ptr<NativeNet> Create(const Arch& a, Net& net) {
    if (a.type != "linear" && a.type != "mlp" && a.type != "wide_deep") return nullptr;
    auto n = std::unique_ptr<NativeNet>(new NativeNet(a));
    const auto params = net->named_parameters();
    n->width_ = a.dense_dim;
    if (HasWide(a.type)) {
      n->wide_.bias = Floats(params["wide_bias"]);
      n->wide_.out = a.num_outputs;
      if (a.dense_dim > 0) {
        n->wide_.in = a.dense_dim;
        n->wide_.wt = Floats(params["wide_dense.weight"].t());
      }
      if (!a.cardinalities.empty()) n->wide_ids_ = Floats(params["wide_ids.weight"]);
      int64_t total = 0;
      for (int64_t c : a.cardinalities) {
        n->wide_offsets_.push_back(total);
        total += c;
      }
    }
    if (HasDeep(a.type)) {
      int64_t in = a.dense_dim;
      for (size_t j = 0; j < a.cardinalities.size(); ++j) {
        n->embeddings_.push_back(Floats(params[StrCat("embedding", j, ".weight")]));
        in += a.embedding_dims[j];
      }
      n->width_ = std::max(n->width_, in);
      for (size_t i = 0; i < a.hidden_units.size(); ++i) {
        n->hidden_.push_back(Linear(params, StrCat("hidden", i)));
        n->width_ = std::max(n->width_, a.hidden_units[i]);
      }
      n->deep_out_ = Linear(params, "deep_out");
    }
    for (const Layer* d : {&n->wide_, &n->deep_out_}) n->multiply_adds_ += d->in * d->out;
    for (const Layer& d : n->hidden_) n->multiply_adds_ += d.in * d.out;
    return n;
  }

  // Whether it scores a batch of `rows` rows faster than libtorch.
  bool Handles(size_t rows) const {
    return rows <= kNativeMaxRows &&
           static_cast<int64_t>(rows) * multiply_adds_ <= kNativeMaxMultiplyAdds;
  }

  // Scores of the rows of `x` (checked by CheckInputs), as Model::Predict.
  void Predict(const transform::TransformedBatch& x, std::vector<float>* out) const {
    const int64_t k = a_.num_outputs;
    const int64_t cols = static_cast<int64_t>(a_.cardinalities.size());
    const bool multiclass = a_.task == Task::kMulticlass;
    thread_local std::vector<float> scratch;
    const size_t need = static_cast<size_t>(2 * k + 2 * width_);
    if (scratch.size() < need) scratch.resize(need);
    float* logits = scratch.data();  // [k]
    float* deep = logits + k;        // [k]
    float* h = deep + k;             // [width_]: the deep tower's layer input...
    float* next = h + width_;        // [width_]: ...and output
    out->resize(x.num_rows * static_cast<size_t>(multiclass ? k : 1));
    for (size_t r = 0; r < x.num_rows; ++r) {
      const float* dense = x.dense.data() + r * x.dense_dim;
      const int64_t* ids = x.ids.data() + r * x.num_categorical;
      // The dense columns, NaN read as 0 (as MakeInputs), at the deep tower's input start.
      for (int64_t j = 0; j < a_.dense_dim; ++j) h[j] = std::isnan(dense[j]) ? 0.f : dense[j];
      if (HasWide(a_.type)) {
        Affine(wide_, h, logits);
        for (int64_t c = 0; c < cols; ++c) {
          const float* w = wide_ids_.data() + (wide_offsets_[c] + ids[c]) * k;
          for (int64_t o = 0; o < k; ++o) logits[o] += w[o];
        }
      }
      if (HasDeep(a_.type)) {
        float* e = h + a_.dense_dim;
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t dim = a_.embedding_dims[c];
          std::copy_n(embeddings_[c].data() + ids[c] * dim, dim, e);
          e += dim;
        }
        float* in = h;
        float* y = next;
        for (const Layer& layer : hidden_) {
          Affine(layer, in, y);
          if (tanh_) {
            for (int64_t o = 0; o < layer.out; ++o) y[o] = std::tanh(y[o]);
          } else {
            for (int64_t o = 0; o < layer.out; ++o) y[o] = std::max(y[o], 0.f);
          }
          std::swap(in, y);
        }
        Affine(deep_out_, in, HasWide(a_.type) ? deep : logits);
        if (HasWide(a_.type)) {
          for (int64_t o = 0; o < k; ++o) logits[o] += deep[o];
        }
      }
      float* s = out->data() + r * static_cast<size_t>(multiclass ? k : 1);
      switch (a_.task) {
        case Task::kBinary:
          s[0] = 1.f / (1.f + std::exp(-logits[0]));
          break;
        case Task::kMulticlass: {
          const float top = *std::max_element(logits, logits + k);
          float sum = 0;
          for (int64_t o = 0; o < k; ++o) sum += s[o] = std::exp(logits[o] - top);
          for (int64_t o = 0; o < k; ++o) s[o] *= 1.f / sum;
          break;
        }
        case Task::kRegression:
          s[0] = logits[0] * static_cast<float>(a_.target_std) + static_cast<float>(a_.target_mean);
          break;
      }
    }
  }

 private:
  // A torch::nn::Linear, y = x W^T + b, with `in` inputs and `out` outputs; no bias when
  // empty.
  struct Layer {
    int64_t in = 0, out = 0;
    std::vector<float> wt;  // W^T: [in][out]
    std::vector<float> bias;
  };

  explicit NativeNet(const Arch& a) : a_(a), tanh_(a.activation == "tanh") {}

  static std::vector<float> Floats(const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  static Layer Linear(const torch::OrderedDict<std::string, torch::Tensor>& params,
                      const std::string& name) {
    const torch::Tensor& w = params[name + ".weight"];
    Layer d;
    d.out = w.size(0);
    d.in = w.size(1);
    d.wt = Floats(w.t());
    d.bias = Floats(params[name + ".bias"]);
    return d;
  }

  // Four floats: one SSE register (GCC's vector extension).
  typedef float Floats4 __attribute__((vector_size(16)));

  // y[0, out) = bias + x[0, in) W^T: outputs in blocks of 32, then 4, then 1, each
  // block's sums kept in registers while the weights stream past. Each output's sum is
  // bias + x[0] w[0] + x[1] w[1] + ... in that order whatever the vector width.
  static void Affine(const Layer& l, const float* __restrict x, float* __restrict y) {
    int64_t o = AffineBlocks<8>(l, x, y, 0);
    o = AffineBlocks<1>(l, x, y, o);
    const float* __restrict w = l.wt.data();
    for (; o < l.out; ++o) {
      float acc = l.bias.empty() ? 0.f : l.bias[o];
      for (int64_t i = 0; i < l.in; ++i) acc += x[i] * w[i * l.out + o];
      y[o] = acc;
    }
  }
  // Outputs [from, from + m * 4 * kVectors) for the most whole blocks m; returns where it
  // stopped.
  template <int kVectors>
  static int64_t AffineBlocks(const Layer& l, const float* __restrict x, float* __restrict y,
                              int64_t from) {
    constexpr int64_t kBlock = 4 * kVectors;
    const int64_t n = l.out;
    const float* __restrict w = l.wt.data();
    int64_t o = from;
    for (; o + kBlock <= n; o += kBlock) {
      Floats4 acc[kVectors];
#pragma GCC unroll 8
      for (int v = 0; v < kVectors; ++v) {
        acc[v] = Floats4{};
        if (!l.bias.empty()) std::memcpy(&acc[v], l.bias.data() + o + 4 * v, sizeof(Floats4));
      }
      for (int64_t i = 0; i < l.in; ++i) {
        const Floats4 xi = {x[i], x[i], x[i], x[i]};
        const float* wi = w + i * n + o;
#pragma GCC unroll 8
        for (int v = 0; v < kVectors; ++v) {
          Floats4 wv;
          std::memcpy(&wv, wi + 4 * v, sizeof(Floats4));
          acc[v] += xi * wv;
        }
      }
      std::memcpy(y + o, acc, sizeof(acc));
    }
    return o;
  }

  Arch a_;
  bool tanh_;
  Layer wide_;                                  // wide_dense (no bias) with wide_bias
  std::vector<float> wide_ids_;                 // [sum of cardinalities][num_outputs]
  std::vector<int64_t> wide_offsets_;           // first wide_ids_ row of each categorical column
  std::vector<std::vector<float>> embeddings_;  // per column [cardinality][embedding_dim]
  std::vector<Layer> hidden_;
  Layer deep_out_;
  int64_t width_ = 0;          // the most of dense_dim and deep tower layer widths
  int64_t multiply_adds_ = 0;  // a row's, in its Linears
};

class TorchModel : public Model {
 public:
  // `net` holds its final weights: the native path copies them.
  TorchModel(Arch arch, Net net, nlohmann::json summary)
      : arch_(std::move(arch)), net_(std::move(net)), summary_(std::move(summary)) {
    net_->eval();
    native_ = NativeNet::Create(arch_, net_);
  }

  std::string_view type() const override { return arch_.type; }
  std::string_view backend() const override { return "torch"; }

  // Thread-safe: the network is in eval mode (no dropout) and no call mutates it or
  // native_. A small batch takes native_, a large one libtorch.
  absl::Status Predict(const transform::TransformedBatch& x,
                       std::vector<float>* out) const override {
    if (native_ && native_->Handles(x.num_rows)) {
      KILN_RETURN_IF_ERROR(CheckInputs(arch_, x));
      native_->Predict(x, out);
      return absl::OkStatus();
    }
    KILN_ASSIGN_OR_RETURN(Inputs in, MakeInputs(arch_, x));
    try {
      PredictRows(arch_, net_, in, out);
    } catch (const std::exception& e) {
      return TorchError("predicting", e);
    }
    return absl::OkStatus();
  }

  absl::Status Save(BundleWriter* writer) const override {
    std::ostringstream weights;
    try {
      torch::serialize::OutputArchive archive;
      net_->save(archive);
      archive.save_to(weights);
    } catch (const std::exception& e) {
      return TorchError("saving the weights", e);
    }
    KILN_RETURN_IF_ERROR(writer->AddFile(kArchFile, arch_.ToJson().dump(2) + "\n"));
    return writer->AddFile(kWeightsFile, weights.str());
  }

  // epochs and steps run, best_step (the evaluation whose weights were kept), parameters.
  nlohmann::json Summary() const override { return summary_; }

 private:
  Arch arch_;
  mutable Net net_;  // forward() is not const in libtorch; Predict does not modify it
  nlohmann::json summary_;
  std::unique_ptr<NativeNet> native_;  // null for cnn
};

// Copies of the parameters and buffers, for keeping the best weights.
std::vector<torch::Tensor> Snapshot(Net& net) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& t : net->parameters()) out.push_back(t.detach().clone());
  for (const torch::Tensor& t : net->buffers()) out.push_back(t.detach().clone());
  return out;
}
void Restore(Net& net, const std::vector<torch::Tensor>& saved) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (torch::Tensor& t : net->parameters()) t.copy_(saved[i++]);
  for (torch::Tensor& t : net->buffers()) t.copy_(saved[i++]);
}

// Per-row loss of logits against labels (standardised for regression), mean over the
// batch with each row weighted.
torch::Tensor Loss(Task task, const torch::Tensor& logits, const torch::Tensor& y,
                   const torch::Tensor& w) {
  torch::Tensor l;
  switch (task) {
    case Task::kBinary:
      l = torch::binary_cross_entropy_with_logits(logits.squeeze(1), y, {}, {},
                                                  at::Reduction::None);
      break;
    case Task::kMulticlass:
      l = -torch::log_softmax(logits, 1).gather(1, y.unsqueeze(1)).squeeze(1);
      break;
    case Task::kRegression:
      l = (logits.squeeze(1) - y).pow(2);
      break;
  }
  if (w.defined()) l = l * w;
  return l.mean();
}

// Fisher-Yates with the generator's raw output (std::shuffle's algorithm is
// implementation-defined; this one is the same everywhere).
void Shuffle(std::vector<int64_t>* v, std::mt19937_64* rng) {
  for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[(*rng)() % i]);
}

absl::StatusOr<std::unique_ptr<Model>> TrainNet(const std::string& type,
                                                const TrainOptions& options,
                                                const transform::OutputSignature& signature,
                                                const Examples& train, const Examples& eval) {
  KILN_ASSIGN_OR_RETURN(Hyper h, ParseParams(type, options, signature));
  Arch& a = h.arch;
  const int64_t rows = static_cast<int64_t>(train.size());
  if (train.x == nullptr || static_cast<int64_t>(train.x->num_rows) != rows) {
    return absl::InvalidArgumentError("train features and labels differ in row count");
  }
  if (!train.weights.empty() && train.weights.size() != train.size()) {
    return absl::InvalidArgumentError("train weights and labels differ in row count");
  }
  if (a.task == Task::kRegression) {
    double mean = 0, ss = 0;
    for (float y : train.labels) mean += y;
    mean /= static_cast<double>(rows);
    for (float y : train.labels) ss += (y - mean) * (y - mean);
    a.target_mean = mean;
    a.target_std = ss > 0 ? std::sqrt(ss / static_cast<double>(rows)) : 1.0;
  }
  KILN_ASSIGN_OR_RETURN(Inputs xtrain, MakeInputs(a, *train.x));
  Inputs xeval;
  if (eval.size() > 0) {
    KILN_ASSIGN_OR_RETURN(xeval, MakeInputs(a, *eval.x));
  }
  const std::string metric = options.early_stopping_metric.empty() ? PrimaryMetric(options.task)
                                                                   : options.early_stopping_metric;
  const bool higher = HigherIsBetter(metric);
  try {
    torch::set_num_threads(
        options.threads > 0 ? options.threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    torch::manual_seed(options.seed);
    Net net(a);

    // Labels and weights as tensors.
    torch::Tensor labels = torch::tensor(train.labels, torch::kFloat32);
    if (a.task == Task::kMulticlass) labels = labels.to(torch::kInt64);
    if (a.task == Task::kRegression) labels = (labels - a.target_mean) / a.target_std;
    torch::Tensor weights;
    if (!train.weights.empty()) weights = torch::tensor(train.weights, torch::kFloat32);

    // Start the output bias at the (weighted) label prior.
    {
      torch::NoGradGuard no_grad;
      torch::Tensor w = weights.defined() ? weights : torch::ones({rows});
      if (a.task == Task::kBinary) {
        double p = (labels * w).sum().item<double>() / w.sum().item<double>();
        p = std::clamp(p, 1e-4, 1 - 1e-4);
        net->output_bias().fill_(std::log(p / (1 - p)));
      } else if (a.task == Task::kMulticlass) {
        torch::Tensor counts = torch::zeros({a.num_outputs}).index_add_(0, labels, w);
        net->output_bias().copy_(torch::log(counts / counts.sum() + 1e-4));
      }
    }

    std::vector<torch::Tensor> params = net->parameters();
    std::vector<torch::Tensor> penalized;  // weights (not biases) under the l2 penalty
    for (const auto& item : net->named_parameters()) {
      const std::string& name = item.key();
      if (name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0) {
        penalized.push_back(item.value());
      }
    }
    std::unique_ptr<Optimizer> optimizer = MakeOptimizer(h.optimizer, params);

    const bool l2_penalty = h.optimizer.l2 > 0 && h.optimizer.name != "ftrl";

    std::mt19937_64 rng(options.seed);
    std::vector<int64_t> order(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) order[static_cast<size_t>(i)] = i;
    const int eval_every = std::max(1, options.eval_every);

    // Data-parallel: every process holds all rows and the same initial weights (same
    // seed); each epoch's shuffled order is dealt round-robin, process r taking positions
    // r, r + world, ... (wrapping around so that every process takes the same number of
    // steps).
    std::unique_ptr<ProcessGroup> group;
    std::string resume_from = options.resume_from;
    if (options.world_size > 1) {
      KILN_ASSIGN_OR_RETURN(group, ProcessGroup::Join(options.rendezvous, options.rank,
                                                      options.world_size, kGroupTimeout));
      KILN_RETURN_IF_ERROR(group->Agree(
          "the training data",
          StrCat(rows, " train rows, ", eval.size(), " eval rows, ", a.dense_dim,
                 " dense columns, cardinalities [", StrJoin(a.cardinalities, ","), "]")));
      KILN_RETURN_IF_ERROR(group->Agree("the data and training config (fingerprint)",
                                        options.run_id.empty()
                                            ? StrCat(options.params.dump(), " seed ", options.seed)
                                            : options.run_id));
      resume_from = group->Share("resume_from", options.resume_from);
    }
    const int64_t world = group ? group->size() : 1;
    const int64_t shard_rows = (rows + world - 1) / world;
    std::vector<int64_t> shard(static_cast<size_t>(shard_rows));
    const int64_t batch = std::min(h.batch_size, shard_rows);
    // This epoch's rows in the order they are trained on, gathered once per epoch so that
    // each mini-batch is a slice.
    torch::Tensor epoch_dense, epoch_ids, epoch_labels, epoch_weights;
    auto deal = [&] {
      const int64_t rank = group ? group->rank() : 0;
      for (int64_t i = 0; i < shard_rows; ++i) {
        shard[static_cast<size_t>(i)] = order[static_cast<size_t>((i * world + rank) % rows)];
      }
      const torch::Tensor idx = torch::from_blob(shard.data(), {shard_rows}, torch::kInt64);
      epoch_dense = xtrain.dense.index_select(0, idx);
      epoch_ids = xtrain.ids.index_select(0, idx);
      epoch_labels = labels.index_select(0, idx);
      if (weights.defined()) epoch_weights = weights.index_select(0, idx);
    };

    double best =
        higher ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    int64_t step = 0, best_step = 0, last_eval_step = -1;
    int since_best = 0;
    bool stop = false;
    std::vector<torch::Tensor> best_weights;
    std::vector<float> scores;
    auto evaluate = [&] {
      last_eval_step = step;
      net->eval();
      PredictRows(a, net, xeval, &scores);
      net->train();
      Metrics m = ComputeMetrics(options.task, options.num_classes, scores, eval.labels);
      if (options.on_eval) options.on_eval(step, m);
      double v = m.count(metric) ? m[metric] : std::nan("");
      if (!std::isnan(v) && (higher ? v > best : v < best)) {
        best = v;
        best_step = step;
        since_best = 0;
        if (options.patience > 0) best_weights = Snapshot(net);
      } else if (options.patience > 0 && ++since_best >= options.patience) {
        stop = true;
      }
    };

    // Where training is: `epoch` epochs begun, this process's `shard` of the current
    // one's `order` used up to `next_start` (shard_rows: finished).
    int64_t epoch = 0, next_start = shard_rows, resumed_from = -1;
    bool epoch_closed = true;  // the current epoch's end-of-epoch evaluation and logs done
    const int64_t total_steps = h.epochs * ((shard_rows + batch - 1) / batch);
    at::Generator torch_rng = at::detail::getDefaultCPUGenerator();
    auto save_checkpoint = [&]() -> absl::Status {
      torch::serialize::OutputArchive archive, net_archive, opt_archive, best_archive;
      archive.write("format", c10::IValue(std::string(kCheckpointFormat)));
      archive.write("type", c10::IValue(a.type));
      archive.write("rows", c10::IValue(rows));
      archive.write("world_size", c10::IValue(world));
      net->save(net_archive);
      archive.write("net", net_archive);
      optimizer->Save(opt_archive);
      archive.write("optimizer", opt_archive);
      for (size_t i = 0; i < best_weights.size(); ++i) {
        best_archive.write(StrCat(i), best_weights[i], /*is_buffer=*/true);
      }
      archive.write("best_weights", best_archive);
      archive.write("num_best_weights", c10::IValue(static_cast<int64_t>(best_weights.size())));
      archive.write("order", torch::from_blob(order.data(), {rows}, torch::kInt64).clone(),
                    /*is_buffer=*/true);
      std::ostringstream rng_text;
      rng_text << rng;
      archive.write("rng", c10::IValue(rng_text.str()));
      {
        std::lock_guard<std::mutex> lock(torch_rng.mutex());
        archive.write("torch_rng", torch_rng.get_state(), /*is_buffer=*/true);
      }
      for (auto [key, v] : {std::pair<const char*, int64_t>{"step", step},
                            {"epoch", epoch},
                            {"next_start", next_start},
                            {"best_step", best_step},
                            {"last_eval_step", last_eval_step},
                            {"since_best", since_best},
                            {"stop", stop ? 1 : 0},
                            {"epoch_closed", epoch_closed ? 1 : 0}}) {
        archive.write(key, c10::IValue(v));
      }
      archive.write("best", c10::IValue(best));
      std::ostringstream out;
      archive.save_to(out);
      return options.on_checkpoint(step, std::move(out).str());
    };
    if (!resume_from.empty()) {
      auto bad = [](std::string_view why) {
        return absl::DataLossError(StrCat("not a checkpoint of this training run: ", why));
      };
      torch::serialize::InputArchive archive, net_archive, opt_archive, best_archive;
      try {
        archive.load_from(resume_from.data(), resume_from.size());
        auto read = [&](const char* key) {
          c10::IValue v;
          archive.read(key, v);
          return v;
        };
        if (read("format").toStringRef() != kCheckpointFormat) return bad("unknown format");
        if (read("world_size").toInt() != world) {
          return bad(StrCat("it was taken by a group of ", read("world_size").toInt(),
                            " processes; this run has ", world));
        }
        if (read("type").toStringRef() != a.type || read("rows").toInt() != rows) {
          return bad(StrCat("it is of a ", read("type").toStringRef(), " model on ",
                            read("rows").toInt(), " rows; this run trains a ", a.type, " model on ",
                            rows));
        }
        archive.read("net", net_archive);
        net->load(net_archive);
        archive.read("optimizer", opt_archive);
        optimizer->Load(opt_archive);
        archive.read("best_weights", best_archive);
        best_weights.resize(static_cast<size_t>(read("num_best_weights").toInt()));
        for (size_t i = 0; i < best_weights.size(); ++i) {
          best_archive.read(StrCat(i), best_weights[i], /*is_buffer=*/true);
        }
        torch::Tensor saved_order;
        archive.read("order", saved_order, /*is_buffer=*/true);
        if (saved_order.numel() != rows) return bad("the row order has the wrong size");
        std::memcpy(order.data(), saved_order.contiguous().data_ptr<int64_t>(),
                    static_cast<size_t>(rows) * sizeof(int64_t));
        deal();
        std::istringstream rng_text(read("rng").toStringRef());
        rng_text >> rng;
        torch::Tensor torch_state;
        archive.read("torch_rng", torch_state, /*is_buffer=*/true);
        {
          std::lock_guard<std::mutex> lock(torch_rng.mutex());
          torch_rng.set_state(torch_state);
        }
        step = read("step").toInt();
        epoch = read("epoch").toInt();
        next_start = read("next_start").toInt();
        best_step = read("best_step").toInt();
        last_eval_step = read("last_eval_step").toInt();
        since_best = static_cast<int>(read("since_best").toInt());
        stop = read("stop").toInt() != 0;
        epoch_closed = read("epoch_closed").toInt() != 0;
        best = read("best").toDouble();
        resumed_from = step;
      } catch (const std::exception& e) {
        return bad(e.what());
      }
    }

    net->train();
    while (!stop) {
      if (next_start >= shard_rows && epoch_closed) {
        if (epoch >= h.epochs) break;
        epoch_closed = false;
        Shuffle(&order, &rng);
        deal();
        ++epoch;
        next_start = 0;
      }
      while (next_start < shard_rows && !stop) {
        const int64_t start = next_start;
        const int64_t n = std::min(batch, shard_rows - start);
        torch::Tensor logits =
            net->forward(epoch_dense.narrow(0, start, n), epoch_ids.narrow(0, start, n));
        torch::Tensor loss =
            Loss(a.task, logits, epoch_labels.narrow(0, start, n),
                 epoch_weights.defined() ? epoch_weights.narrow(0, start, n) : epoch_weights);
        torch::Tensor total = loss;
        if (l2_penalty) {
          for (const torch::Tensor& p : penalized) {
            total = total + 0.5 * h.optimizer.l2 * p.pow(2).sum();
          }
        }
        optimizer->ZeroGrad();
        total.backward();
        if (group) group->AverageGradients(params);
        optimizer->Step();
        ++step;
        next_start = start + n;
        if (options.on_loss) options.on_loss(step, loss.item<double>());
        if (options.on_step) options.on_step(step, total_steps);
        if (eval.size() > 0 && step % eval_every == 0) evaluate();
        if (options.checkpoint_every > 0 && options.on_checkpoint &&
            step % options.checkpoint_every == 0) {
          KILN_RETURN_IF_ERROR(save_checkpoint());
        }
      }
      // The end of the epoch (also when a checkpoint taken at its last step resumed).
      epoch_closed = true;
      if (eval.size() > 0 && last_eval_step != step && !stop) evaluate();
      if (options.on_histogram) {
        for (const auto& item : net->named_parameters()) {
          torch::Tensor t = item.value().detach().contiguous();
          options.on_histogram(
              StrCat("weights/", item.key()), step,
              std::span<const float>(t.data_ptr<float>(), static_cast<size_t>(t.numel())));
        }
      }
    }
    if (options.patience > 0 && !best_weights.empty()) Restore(net, best_weights);
    if (auto* flat = dynamic_cast<FlatAdam*>(optimizer.get())) flat->Unbind();
    int64_t num_params = 0;
    for (const torch::Tensor& p : params) num_params += p.numel();
    nlohmann::json summary = {{"epochs", epoch},
                              {"steps", step},
                              {"best_step", eval.size() > 0 ? best_step : step},
                              {"parameters", num_params}};
    if (resumed_from >= 0) summary["resumed_from_step"] = resumed_from;
    return std::unique_ptr<Model>(new TorchModel(a, std::move(net), std::move(summary)));
  } catch (const std::exception& e) {
    return TorchError("training", e);
  }
}

absl::StatusOr<std::unique_ptr<Model>> LoadNet(const std::string& type, const Bundle& bundle,
                                               Task task, int num_classes) {
  KILN_ASSIGN_OR_RETURN(std::string arch_text, bundle.ReadFile(kArchFile));
  KILN_ASSIGN_OR_RETURN(Arch a, Arch::FromJson(arch_text));
  const int64_t outputs = task == Task::kMulticlass ? num_classes : 1;
  if (a.type != type || a.task != task || a.num_outputs != outputs) {
    return absl::DataLossError(StrCat(kArchFile, " describes a ", a.type, " ", TaskName(a.task),
                                      " model with ", a.num_outputs, " outputs; the bundle a ",
                                      type, " ", TaskName(task), " model with ", outputs));
  }
  KILN_ASSIGN_OR_RETURN(std::string weights, bundle.ReadFile(kWeightsFile));
  try {
    Net net(a);
    // Module::load replaces each tensor with the stored one whatever its shape, so the
    // shapes the architecture gives are checked afterwards.
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const auto& item : net->named_parameters()) {
      shapes.emplace_back(item.key(), item.value().sizes().vec());
    }
    torch::serialize::InputArchive archive;
    archive.load_from(weights.data(), weights.size());
    net->load(archive);
    size_t i = 0;
    for (const auto& item : net->named_parameters()) {
      if (item.value().sizes().vec() != shapes[i++].second) {
        return absl::DataLossError(StrCat(kWeightsFile, " does not fit ", kArchFile, ": ",
                                          item.key(), " has shape ",
                                          StrJoin(item.value().sizes().vec(), "x"), ", expected ",
                                          StrJoin(shapes[i - 1].second, "x")));
      }
    }
    const nlohmann::json summary =
        bundle.manifest().config.value("model_summary", nlohmann::json::object());
    return std::unique_ptr<Model>(new TorchModel(a, std::move(net), summary));
  } catch (const std::exception& e) {
    return absl::DataLossError(
        StrCat(kWeightsFile, " does not fit ", kArchFile, ": libtorch: ", e.what()));
  }
}

}  // namespace

}  // namespace kiln::model

// The plugin's entry point (see model.cc: the torch models live in a module loaded on
// first use, so kiln commands that train no neural model never pay libtorch's start-up).
// Hands the trainer and loader of every type to `add`, which registers them in the
// loading binary's registry.
namespace kiln::model {
absl::StatusOr<std::unique_ptr<Model>> LoadTorchScript(const Bundle& bundle, Task task,
                                                       int num_classes);  // torchscript.cc
}  // namespace kiln::model

extern "C" __attribute__((visibility("default"))) void kiln_torch_models_register(
    void* ctx, void (*add)(void* ctx, const char* name, kiln::model::TrainFn train,
                           kiln::model::LoadFn load)) {
  using namespace kiln::model;
  for (const char* type : {"linear", "mlp", "wide_deep", "cnn"}) {
    const std::string name = type;
    add(
        ctx, type,
        [name](const TrainOptions& options, const kiln::transform::OutputSignature& signature,
               const Examples& train,
               const Examples& eval) { return TrainNet(name, options, signature, train, eval); },
        [name](const Bundle& bundle, Task task, int num_classes) {
          return LoadNet(name, bundle, task, num_classes);
        });
  }
  add(ctx, "torchscript", nullptr, LoadTorchScript);
}
