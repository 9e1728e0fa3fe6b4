// op_base: what every io_uring submission's user_data points at.
//
// One operation may produce several CQEs: its own (the primary), the one of its linked timeout,
// the one of a cancel request aimed at it, and, for zero-copy sends, a notification. The low bits
// of user_data say which of these a CQE is, so an awaiter counts them all and resumes its
// coroutine only after the last one: the kernel is then done with every byte it was lent.
#pragma once

#include <cstdint>

namespace ringfetch {

enum class cqe_kind : std::uint64_t {
  primary = 0,  // the operation's own completion (and a send_zc notification)
  timeout = 1,  // its linked timeout
  cancel = 2,   // a cancel request aimed at it
  message = 3,  // posted into this ring by another reactor (IORING_OP_MSG_RING): no SQE of ours
};

class alignas(8) op_base {
 public:
  // Called on the reactor thread for each CQE tagged with this op. `flags` are the CQE flags.
  virtual void complete(cqe_kind kind, int res, std::uint32_t flags) noexcept = 0;

  std::uint64_t user_data(cqe_kind kind) noexcept {
    return reinterpret_cast<std::uint64_t>(this) | static_cast<std::uint64_t>(kind);
  }
  static op_base* from_user_data(std::uint64_t data) noexcept {
    return reinterpret_cast<op_base*>(data & ~std::uint64_t{7});
  }
  static cqe_kind kind_of(std::uint64_t data) noexcept { return static_cast<cqe_kind>(data & 7); }

 protected:
  op_base() = default;
  ~op_base() = default;
};

}  // namespace ringfetch
