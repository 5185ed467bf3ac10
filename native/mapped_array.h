// A fixed array of zeroed T, mapped when it is made. The tap's table indexes by hash, so each
// lookup lands on a random page; after a syscall on a kernel with PTI and no PCID every page is a
// TLB miss, and a page touched for the first time is a fault (microseconds in a VM). On huge pages
// (transparent huge pages in `madvise` or `always` mode) a large array is a few TLB entries, and
// it is faulted in 2 MB at a time as it fills: one fault per several thousand connections, and an
// idle tap holds no memory. Nothing is allocated per use.
#ifndef NODE_TOA_MAPPED_ARRAY_H
#define NODE_TOA_MAPPED_ARRAY_H

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace toa {

template <typename T>
class MappedArray {
  // All-zero bytes must be a valid, default T: the kernel hands out zeroed pages.
  static_assert(std::is_trivially_copyable<T>::value, "MappedArray holds plain data");

 public:
  explicit MappedArray(size_t count) : count_(count == 0 ? 1 : count) {
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = count_ * sizeof(T);
    // An array of a quarter of a huge page or more (the default table's 1 MB index, its 17 MB of
    // slots) starts on a huge-page boundary, in whole huge pages; a smaller one (a small table,
    // the fuzzer's, one per input) stays on plain pages: its first touch would zero 2 MB.
    const bool huge = bytes >= kHuge / 4;
    const size_t whole = (bytes + kHuge - 1) & ~(kHuge - 1);  // the huge pages it spans
    length_ = huge ? whole + kHuge : bytes;
    map_ = mmap(nullptr, length_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      throw std::bad_alloc();
    }
    const uintptr_t start = huge ? (reinterpret_cast<uintptr_t>(map_) + kHuge - 1) & ~(kHuge - 1)
                                 : reinterpret_cast<uintptr_t>(map_);
    data_ = reinterpret_cast<T*>(start);
#ifdef MADV_HUGEPAGE
    if (huge) madvise(reinterpret_cast<void*>(start), whole, MADV_HUGEPAGE);
#endif
  }
  ~MappedArray() {
    if (map_ != nullptr) munmap(map_, length_);
  }
  MappedArray(MappedArray&& o) noexcept
      : count_(o.count_), length_(o.length_), map_(std::exchange(o.map_, nullptr)), data_(o.data_) {}
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;
  MappedArray& operator=(MappedArray&&) = delete;

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return count_; }

 private:
  size_t count_;
  size_t length_ = 0;
  void* map_ = nullptr;
  T* data_ = nullptr;
};

}  // namespace toa

#endif  // NODE_TOA_MAPPED_ARRAY_H
