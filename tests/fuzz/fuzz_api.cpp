// fuzz_api: the protobuf API boundary (api_codec.hpp). The node side: decode_request on one
// serialized shoal.pb.Request, and a call it accepts must re-encode (encode_request) into bytes it
// accepts again as the same kind of call. The client side: the same bytes as every Response the
// CLI decodes (decode_*_response, response_request_id).
#include <google/protobuf/stubs/logging.h>

#include "fuzz_target.hpp"
#include "shoal/wire/api_codec.hpp"

namespace {

// protobuf logs each string field of invalid UTF-8 it refuses: millions of lines in a campaign.
[[maybe_unused]] const bool protobuf_quiet = (google::protobuf::SetLogHandler(nullptr), true);

}  // namespace

extern "C" int SHOAL_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  using namespace shoal;
  const std::string_view bytes = fuzz::view(data, size);

  auto decoded = decode_request(bytes);
  if (decoded) {
    const std::string again = encode_request(decoded->request_id, decoded->call, decoded->api_key);
    auto redecoded = decode_request(again);
    if (!redecoded) {
      std::fprintf(stderr, "re-encoded request refused: %s\n",
                   redecoded.error().error.to_string().c_str());
    }
    FUZZ_CHECK(redecoded.is_ok());
    FUZZ_CHECK(redecoded->request_id == decoded->request_id);
    FUZZ_CHECK(redecoded->api_key == decoded->api_key);
    FUZZ_CHECK(redecoded->call.index() == decoded->call.index());
  } else {
    FUZZ_CHECK(!decoded.error().error.is_ok());
    (void)encode_error(decoded.error().request_id, decoded.error().error);
  }

  (void)response_request_id(bytes);
  (void)decode_infer_response(bytes);
  (void)decode_push_response(bytes);
  (void)decode_list_response(bytes);
  (void)decode_models_response(bytes);
  (void)decode_label_response(bytes);
  (void)decode_status_response(bytes);
  (void)decode_cluster_status_response(bytes);
  (void)decode_validation_set_response(bytes);
  (void)decode_validate_response(bytes);
  (void)decode_policy_response(bytes);
  (void)decode_trial_response(bytes);
  return 0;
}
