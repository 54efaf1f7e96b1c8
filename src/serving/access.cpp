#include "shoal/serving/access.hpp"

#include <algorithm>

namespace shoal {

result<principal> authenticate(const key_table* keys, std::optional<std::string_view> key,
                               const std::string& how) {
  if (keys == nullptr) {
    principal open;
    open.admin = true;
    open.open = true;
    return open;
  }
  if (!key || key->empty()) {
    return status::unauthenticated("this node requires an API key: send it with " + how);
  }
  auto who = keys->find(*key);
  if (!who) return status::unauthenticated("unknown API key");
  return *who;
}

status authorize(const principal& who, const api_call& call) {
  if (who.admin) return status::ok();
  return std::visit(
      [&who](const auto& c) -> status {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, push_request>) {
          // The same answer whether or not the other tenant has such a model.
          if (!who.may_access(c.id.tenant)) {
            return status::not_found("no tenant " + c.id.tenant + " (this key belongs to tenant " +
                                     who.tenant + ")");
          }
          return status::ok();
        } else if constexpr (std::is_same_v<T, infer_request> || std::is_same_v<T, list_request> ||
                             std::is_same_v<T, label_request> ||
                             std::is_same_v<T, validation_set_request> ||
                             std::is_same_v<T, validate_request> ||
                             std::is_same_v<T, policy_request> ||
                             std::is_same_v<T, trial_request>) {
          return who.may_access(c.id.tenant) ? status::ok() : model_not_found(c.id);
        } else if constexpr (std::is_same_v<T, forget_request>) {
          return who.admin ? status::ok()
                           : status::permission_denied(
                                 "cluster forget changes the whole cluster: it needs an admin key");
        } else {
          return status::ok();  // models (filtered), node and cluster status
        }
      },
      call);
}

std::vector<model_entry> visible_models(const principal& who, std::vector<model_entry> all) {
  if (who.admin) return all;
  all.erase(std::remove_if(all.begin(), all.end(),
                           [&who](const model_entry& m) { return !who.may_access(m.id.tenant); }),
            all.end());
  return all;
}

}  // namespace shoal
