// grpc_front_end: the KServe V2 gRPC service (inference.GRPCInferenceService: ServerLive,
// ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer) on a port of its own, in
// front of the same front door as HTTP: keys as "authorization: Bearer KEY" metadata, tenants,
// admission and metrics alike. Requests and answers mean what their HTTP twins mean (v2_codec.hpp):
// one BYTES input named "text" asks a text model, anything else a tensor model; tensors come as
// typed contents or raw_input_contents, and answers always as raw_output_contents (what
// tritonclient and KServe's client read).
//
// Errors map to gRPC codes: a client's mistake INVALID_ARGUMENT, an unknown model NOT_FOUND, no or
// a wrong key UNAUTHENTICATED, another tenant's model PERMISSION_DENIED, limits RESOURCE_EXHAUSTED,
// a draining node UNAVAILABLE.
//
// Threading: gRPC's own threads run the handlers (its callback API); each calls the front door,
// which answers on that thread or later from an actor, and ends its round after each request (a
// request micro-batched on that thread is flushed at once).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "shoal/base/status.hpp"
#include "shoal/serving/front_door.hpp"

namespace shoal {

struct grpc_front_end_options {
  std::string host = "127.0.0.1";
  uint16_t port = 7423;                 // 0: the OS picks one (see port())
  size_t max_message_bytes = 4u << 20;  // larger requests are refused by gRPC (RESOURCE_EXHAUSTED)
  size_t max_batch = 1024;              // texts, or rows, in one request
};

class grpc_front_end {
 public:
  /// Starts serving; an address that cannot be bound is an error saying which.
  static result<std::unique_ptr<grpc_front_end>> start(grpc_front_end_options options,
                                                       std::shared_ptr<front_door> door);
  ~grpc_front_end();
  grpc_front_end(const grpc_front_end&) = delete;
  grpc_front_end& operator=(const grpc_front_end&) = delete;

  /// Returns the port it listens on.
  uint16_t port() const;
  /// Stops taking calls, cancels what is left after a short grace, and joins gRPC's threads.
  /// Idempotent.
  void stop();

  struct impl;

 private:
  explicit grpc_front_end(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace shoal
