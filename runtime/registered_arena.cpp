#include "runtime/registered_arena.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

#include "runtime/log.hpp"
#include "runtime/reactor.hpp"

namespace ringfetch {
namespace {

constexpr std::size_t max_registered_region = std::size_t{1} << 30;  // kernel limit per iovec

std::atomic<bool> fallback_reported{false};

std::string memlock_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_MEMLOCK, &rl) != 0) return "unknown";
  if (rl.rlim_cur == RLIM_INFINITY) return "unlimited";
  return std::to_string(rl.rlim_cur / 1024) + " KiB";
}

}  // namespace

arena_buffer::arena_buffer(arena_buffer&& other) noexcept
    : arena_(std::exchange(other.arena_, nullptr)),
      first_block_(other.first_block_),
      block_count_(other.block_count_),
      bytes_(std::exchange(other.bytes_, {})),
      index_(std::exchange(other.index_, -1)) {}

arena_buffer& arena_buffer::operator=(arena_buffer&& other) noexcept {
  if (this != &other) {
    release();
    arena_ = std::exchange(other.arena_, nullptr);
    first_block_ = other.first_block_;
    block_count_ = other.block_count_;
    bytes_ = std::exchange(other.bytes_, {});
    index_ = std::exchange(other.index_, -1);
  }
  return *this;
}

void arena_buffer::release() noexcept {
  registered_arena* arena = std::exchange(arena_, nullptr);
  if (arena == nullptr) return;
  bytes_ = {};
  index_ = -1;
  if (reactor::current() == &arena->owner_) {
    arena->release_blocks(first_block_, block_count_);
  } else {
    // Hand the blocks back to the owning thread instead of sharing the free map under a lock.
    arena->owner_.post(
        [arena, first = first_block_, count = block_count_] { arena->release_blocks(first, count); });
  }
}

registered_arena::registered_arena(reactor& owner, options opts)
    : owner_(owner), block_size_(opts.block_size) {
  if (block_size_ == 0 || block_size_ % 4096 != 0) {
    throw std::invalid_argument("registered_arena: block size must be a non-zero multiple of 4096");
  }
  const std::size_t blocks = (opts.bytes + block_size_ - 1) / block_size_;
  mapped_bytes_ = blocks * block_size_;
  void* p = ::mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<std::byte*>(p);
  ::madvise(base_, mapped_bytes_, MADV_HUGEPAGE);  // fewer TLB misses; harmless if refused
  used_.assign(blocks, false);
  free_blocks_ = blocks;
  blocks_per_region_ = std::max<std::size_t>(1, max_registered_region / block_size_);

  if (!opts.try_register) {
    fallback_reason_ = "registration disabled by configuration";
  } else if (block_size_ > max_registered_region) {
    fallback_reason_ = "blocks larger than 1 GiB cannot be registered";
  } else {
    std::vector<iovec> regions;
    for (std::size_t first = 0; first < blocks; first += blocks_per_region_) {
      std::size_t count = std::min(blocks_per_region_, blocks - first);
      regions.push_back({base_ + first * block_size_, count * block_size_});
    }
    int rc = io_uring_register_buffers(owner_.ring(), regions.data(),
                                       static_cast<unsigned>(regions.size()));
    if (rc == 0) {
      registered_ = true;
    } else {
      fallback_reason_ = std::string("io_uring_register_buffers failed: ") + std::strerror(-rc) +
                         " (RLIMIT_MEMLOCK " + memlock_limit() + ")";
    }
  }
  if (!registered_) {
    log::once(fallback_reported, log::level::warn,
              "registered arena: " + fallback_reason_ +
                  "; using plain memory with the same API (read_fixed/write_fixed become "
                  "read/write). Raise `ulimit -l` to pin buffers.");
  }
}

registered_arena::~registered_arena() {
  if (free_blocks_ != used_.size()) {
    log::warn("registered arena destroyed with " +
              std::to_string(used_.size() - free_blocks_) + " block(s) still lent out");
  }
  if (registered_) io_uring_unregister_buffers(owner_.ring());
  ::munmap(base_, mapped_bytes_);
}

int registered_arena::region_of(std::size_t first_block, std::size_t count) const noexcept {
  if (!registered_ || count == 0) return -1;
  std::size_t first_region = first_block / blocks_per_region_;
  std::size_t last_region = (first_block + count - 1) / blocks_per_region_;
  return first_region == last_region ? static_cast<int>(first_region) : -1;
}

std::optional<arena_buffer> registered_arena::allocate(std::size_t bytes) {
  const std::size_t count = std::max<std::size_t>(1, (bytes + block_size_ - 1) / block_size_);
  const std::size_t blocks = used_.size();
  if (count > free_blocks_ || count > blocks) return std::nullopt;
  // First fit from the hint, wrapping once; a run never straddles two registered regions, so
  // one buffer index always covers the whole buffer.
  for (std::size_t scanned = 0, start = search_hint_ % blocks; scanned < blocks;) {
    if (start + count > blocks) {
      scanned += blocks - start;
      start = 0;
      continue;
    }
    std::size_t region_end = (start / blocks_per_region_ + 1) * blocks_per_region_;
    if (start + count > region_end) {
      scanned += region_end - start;
      start = region_end % blocks;
      continue;
    }
    std::size_t run = 0;
    while (run < count && !used_[start + run]) ++run;
    if (run == count) {
      for (std::size_t i = 0; i < count; ++i) used_[start + i] = true;
      free_blocks_ -= count;
      search_hint_ = start + count;
      std::span<std::byte> span{base_ + start * block_size_, count * block_size_};
      return arena_buffer(this, start, count, span, region_of(start, count));
    }
    scanned += run + 1;
    start = (start + run + 1) % blocks;
  }
  return std::nullopt;
}

void registered_arena::release_blocks(std::size_t first, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) used_[first + i] = false;
  free_blocks_ += count;
}

int registered_arena::index_of(std::span<const std::byte> span) const noexcept {
  if (!registered_ || span.empty()) return -1;
  const std::byte* begin = span.data();
  const std::byte* end = begin + span.size();
  if (begin < base_ || end > base_ + mapped_bytes_) return -1;
  std::size_t first = static_cast<std::size_t>(begin - base_) / block_size_;
  std::size_t last = static_cast<std::size_t>(end - 1 - base_) / block_size_;
  return region_of(first, last - first + 1);
}

}  // namespace ringfetch
