#include "cluster/member_proto.hpp"

#include "shoal/base/host_port.hpp"

namespace shoal {
namespace {

bool is_address(const std::string& a) { return parse_host_port(a).is_ok(); }

}  // namespace

void member_to_proto(const member& m, pb::Member& p) {
  p.set_id(m.id);
  p.set_name(m.name);
  p.set_cluster_address(m.cluster_address);
  p.set_http_address(m.http_address);
  p.set_zmq_address(m.zmq_address);
  p.set_data_address(m.data_address);
  p.set_served_local(m.load.served_local);
  p.set_forwarded(m.load.forwarded);
  p.set_served_for_peers(m.load.served_for_peers);
  p.set_traffic_copies(m.load.traffic_copies);
  p.set_incarnation(m.incarnation);
  p.set_status(static_cast<pb::Member::Status>(m.status));
  p.set_heartbeat(m.heartbeat);
  p.set_in_flight(m.load.in_flight);
  p.set_loaded_models(m.load.loaded_models);
  p.set_free_model_memory(m.load.free_model_memory);
}

result<member> member_from_proto(const pb::Member& p) {
  auto bad = [&](const std::string& what) {
    return status::invalid_argument("invalid member entry" +
                                    (p.name().empty() || p.name().size() > max_member_field
                                         ? std::string()
                                         : " '" + p.name() + "'") +
                                    ": " + what);
  };
  for (const std::string* f : {&p.id(), &p.name(), &p.cluster_address(), &p.http_address(),
                               &p.zmq_address(), &p.data_address()}) {
    if (f->size() > max_member_field) {
      return bad("a field is over " + std::to_string(max_member_field) + " bytes");
    }
  }
  if (p.id().empty()) return bad("no id");
  if (!is_address(p.cluster_address())) return bad("cluster address is not HOST:PORT");
  if (!p.http_address().empty() && !is_address(p.http_address())) return bad("http address is not HOST:PORT");
  if (!p.zmq_address().empty() && !is_address(p.zmq_address())) return bad("zmq address is not HOST:PORT");
  if (!p.data_address().empty() && !is_address(p.data_address())) return bad("data address is not HOST:PORT");
  if (p.status() < pb::Member::ALIVE || p.status() > pb::Member::LEFT) return bad("unknown status");
  member m;
  m.id = p.id();
  m.name = p.name();
  m.cluster_address = p.cluster_address();
  m.http_address = p.http_address();
  m.zmq_address = p.zmq_address();
  m.data_address = p.data_address();
  m.load.served_local = p.served_local();
  m.load.forwarded = p.forwarded();
  m.load.served_for_peers = p.served_for_peers();
  m.load.traffic_copies = p.traffic_copies();
  m.incarnation = p.incarnation();
  m.status = static_cast<member_status>(p.status());
  m.heartbeat = p.heartbeat();
  m.load.in_flight = p.in_flight();
  m.load.loaded_models = p.loaded_models();
  m.load.free_model_memory = p.free_model_memory();
  return m;
}

}  // namespace shoal
