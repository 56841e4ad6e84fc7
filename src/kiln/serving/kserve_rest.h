// KServe's v2 inference protocol over REST (the open inference protocol Triton and KServe
// speak), on the model manager:
//   GET  /v2/health/live, /v2/health/ready       200 when live / every model has a version
//   GET  /v2                                      server metadata
//   GET  /v2/models/M[/versions/V][/ready]        model metadata / readiness
//   POST /v2/models/M[/versions/V]/infer          tensors in, tensors out (JSON data)
// Inputs are the signature's features, each a tensor of shape [N] or [N, 1] (INT64, FP32,
// FP64 or BYTES); outputs as the signature names them.
#ifndef KILN_SERVING_KSERVE_REST_H_
#define KILN_SERVING_KSERVE_REST_H_

#include "kiln/serving/manager.h"
#include "kiln/serving/rest_api.h"

namespace kiln::serving {

// Handles a request whose path starts with /v2.
HttpResponse HandleKserveRest(const InferenceService& service, const HttpRequest& request);

}  // namespace kiln::serving

#endif  // KILN_SERVING_KSERVE_REST_H_
