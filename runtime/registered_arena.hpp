// registered_arena: one reactor's pinned memory, registered with its io_uring and carved into
// blocks, so read_fixed/write_fixed (and later DMA-friendly paths) skip per-I/O page pinning.
//
// Allocation is single-threaded (the owning reactor's thread), so it takes no lock. A buffer
// released on another thread is handed back to the owner by message, never by a shared lock.
//
// Registration can fail: non-root users have an 8 MiB RLIMIT_MEMLOCK, and old kernels or
// exhausted memory refuse it. The arena then works the same with plain memory (buffers report
// index -1 and the fixed ops fall back to plain read/write), and says so once in the log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ringfetch {

class reactor;
class registered_arena;

// A span the kernel may address by registered-buffer index. index < 0: plain memory.
struct fixed_span {
  std::span<std::byte> bytes;
  int index = -1;

  fixed_span subspan(std::size_t offset, std::size_t count = std::dynamic_extent) const {
    return {bytes.subspan(offset, count), index};
  }
};

// A run of contiguous arena blocks, returned to the arena when destroyed. Move-only.
// Must not outlive its arena (that is, its reactor).
class arena_buffer {
 public:
  arena_buffer() = default;
  arena_buffer(arena_buffer&& other) noexcept;
  arena_buffer& operator=(arena_buffer&& other) noexcept;
  arena_buffer(const arena_buffer&) = delete;
  arena_buffer& operator=(const arena_buffer&) = delete;
  ~arena_buffer() { release(); }

  std::span<std::byte> bytes() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return bytes_.size(); }
  std::byte* data() const noexcept { return bytes_.data(); }
  int index() const noexcept { return index_; }
  fixed_span fixed() const noexcept { return {bytes_, index_}; }
  explicit operator bool() const noexcept { return arena_ != nullptr; }

  // Returns the blocks now (from any thread). Idempotent.
  void release() noexcept;

 private:
  friend class registered_arena;
  arena_buffer(registered_arena* arena, std::size_t first, std::size_t count,
               std::span<std::byte> bytes, int index) noexcept
      : arena_(arena), first_block_(first), block_count_(count), bytes_(bytes), index_(index) {}

  registered_arena* arena_ = nullptr;
  std::size_t first_block_ = 0;
  std::size_t block_count_ = 0;
  std::span<std::byte> bytes_;
  int index_ = -1;
};

class registered_arena {
 public:
  struct options {
    std::size_t bytes = 0;                       // rounded up to whole blocks
    std::size_t block_size = std::size_t{1} << 20;
    bool try_register = true;                    // false: plain memory (tests the fallback)
  };

  // Must be constructed on the reactor's thread.
  registered_arena(reactor& owner, options opts);
  ~registered_arena();
  registered_arena(const registered_arena&) = delete;
  registered_arena& operator=(const registered_arena&) = delete;

  // Reactor thread only. A buffer of at least `bytes` (whole blocks, contiguous), or nullopt
  // when no free run is large enough. Never blocks; never touches the kernel.
  std::optional<arena_buffer> allocate(std::size_t bytes);

  // The registered index covering all of `span`, or -1 (plain memory, or outside the arena).
  int index_of(std::span<const std::byte> span) const noexcept;
  fixed_span fixed(std::span<std::byte> span) const noexcept { return {span, index_of(span)}; }

  bool registered() const noexcept { return registered_; }
  // Why registration was skipped or failed; empty when registered.
  const std::string& fallback_reason() const noexcept { return fallback_reason_; }
  std::size_t block_size() const noexcept { return block_size_; }
  std::size_t capacity() const noexcept { return block_size_ * used_.size(); }
  std::size_t free_bytes() const noexcept { return free_blocks_ * block_size_; }

 private:
  friend class arena_buffer;
  void release_blocks(std::size_t first, std::size_t count) noexcept;
  int region_of(std::size_t first_block, std::size_t count) const noexcept;

  reactor& owner_;
  std::byte* base_ = nullptr;
  std::size_t mapped_bytes_ = 0;
  std::size_t block_size_;
  std::size_t blocks_per_region_ = 0;  // a registered iovec is at most 1 GiB
  std::vector<bool> used_;
  std::size_t free_blocks_ = 0;
  std::size_t search_hint_ = 0;
  bool registered_ = false;
  std::string fallback_reason_;
};

}  // namespace ringfetch
