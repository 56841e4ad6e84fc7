// KServe's v2 inference protocol over REST (the open inference protocol Triton and KServe
// speak), on the model manager:
//   GET  /v2/health/live, /v2/health/ready       200 when live / every model has a version
//   GET  /v2                                      server metadata
//   GET  /v2/models/M[/versions/V][/ready]        model metadata / readiness
//   POST /v2/models/M[/versions/V]/infer          tensors in, tensors out
// Inputs are the signature's features, each a tensor of shape [N] or [N, 1] (INT64, FP32,
// FP64 or BYTES); outputs as the signature names them.
//
// Tensor data is JSON ("data") or, by Triton's binary tensor data extension (advertised as
// "binary_tensor_data"), raw bytes after the JSON: the request header
// Inference-Header-Content-Length gives the JSON's length, and each input with
// "parameters": {"binary_data_size": S} takes the next S bytes, in input order (packed
// little-endian; BYTES elements each a 4-byte little-endian length and the bytes). Outputs
// asked for with "parameters": {"binary_data": true}, or all outputs without their own
// "binary_data" when the request's "parameters" has "binary_data_output": true, come back
// the same way: "parameters": {"binary_data_size": S} instead of "data", the response header
// Inference-Header-Content-Length, content type application/octet-stream. Binary data whose
// sizes do not add up to the body, or do not fit an input's shape and datatype, is a 400.
#ifndef KILN_SERVING_KSERVE_REST_H_
#define KILN_SERVING_KSERVE_REST_H_

#include "kiln/serving/manager.h"
#include "kiln/serving/rest_api.h"

namespace kiln::serving {

// Handles a request whose path starts with /v2.
void HandleKserveRestAsync(const InferenceService& service, const HttpRequest& request,
                           const HttpReply& reply);
// HandleKserveRestAsync, waiting for the answer.
HttpResponse HandleKserveRest(const InferenceService& service, const HttpRequest& request);

}  // namespace kiln::serving

#endif  // KILN_SERVING_KSERVE_REST_H_
