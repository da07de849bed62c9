# C-level interface of the shared-memory books (parsec_fast._shm): the region layout of
# _shm_c.h and the helpers both sides use. The publisher is _shm_writer.pxd's, the reader side
# (SharedRegion, SharedBook) _shm_reader.pxd's.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "_shm_c.h" nogil:
    const char* PFSHM_MAGIC
    unsigned int PFSHM_VERSION
    unsigned int PFSHM_BYTE_ORDER
    unsigned int PFSHM_TEXT_SIZES
    int PFSHM_PID_MAX
    int PFSHM_OUTCOME_MAX
    int PFSHM_TEXT_MAX
    int PFSHM_ERROR_MAX
    unsigned int PFSHM_OCCUPIED
    unsigned int PFSHM_VALID
    unsigned int PFSHM_HAS_BASELINE
    unsigned int PFSHM_LOCALLY_STALE
    unsigned int PFSHM_LIVE
    unsigned int PFSHM_WAKE_FENCED
    unsigned int PFSHM_WAKE_MEMBARRIER
    unsigned int PFSHM_CLOSED
    int PFSHM_OK
    int PFSHM_BUSY
    int PFSHM_GONE

    ctypedef struct pfshm_level:
        int64_t key
        double size

    ctypedef struct pfshm_header:
        char magic[8]
        uint32_t version
        uint32_t byte_order
        uint32_t header_size
        uint32_t slot_header_size
        uint32_t level_size
        uint32_t slot_size
        uint32_t max_books
        uint32_t max_levels
        uint32_t dir_entries
        uint32_t text_sizes
        uint64_t reader_offset
        uint64_t dir_offset
        uint64_t slots_offset
        uint64_t region_size
        int64_t writer_pid
        uint64_t writer_pidns
        int64_t created_ns
        int64_t heartbeat_timeout_ns
        uint32_t wake_protocol
        uint32_t copy_size
        uint64_t dir_lock
        uint64_t books_version
        uint32_t n_books
        uint32_t n_unpublished
        uint32_t changes
        uint32_t state
        int64_t heartbeat_ns
        uint32_t close_reason_len
        char close_reason[48]

    ctypedef struct pfshm_reader_page:
        uint32_t waiters

    ctypedef struct pfshm_slot:
        uint64_t lock

    ctypedef struct pfshm_copy:
        uint32_t gen
        uint32_t flags
        uint8_t book_state
        uint8_t feed_state
        uint16_t n_bids
        uint16_t n_asks
        int64_t seq
        pfshm_level top_bid
        pfshm_level top_ask
        int64_t exchange_ts_ms
        int64_t ingest_ts_ms
        int64_t last_frame_ns
        int64_t stale_after_ms
        uint32_t total_bids
        uint32_t total_asks
        uint64_t publishes
        uint16_t reason_len
        uint16_t error_len
        uint16_t book_text_len
        uint16_t feed_text_len
        uint16_t pid_len
        uint16_t outcome_len
        uint16_t key_len
        char pid[128]
        char outcome[64]
        char key[64]
        char reason[48]
        char book_text[48]
        char feed_text[48]
        char error[256]

    ctypedef struct pfshm_top:
        uint32_t flags
        uint8_t book_state
        uint8_t feed_state
        uint16_t n_bids
        uint16_t n_asks
        int64_t seq
        pfshm_level top_bid
        pfshm_level top_ask

    ctypedef struct pfshm_state:
        pfshm_top top
        int64_t exchange_ts_ms
        int64_t ingest_ts_ms
        int64_t last_frame_ns
        int64_t stale_after_ms
        uint32_t total_bids
        uint32_t total_asks
        uint64_t publishes
        uint16_t reason_len
        uint16_t error_len
        uint16_t book_text_len
        uint16_t feed_text_len
        char reason[48]
        char book_text[48]
        char feed_text[48]
        char error[256]

    ctypedef struct pfshm_ident:
        uint32_t gen
        uint32_t flags
        uint16_t pid_len
        uint16_t outcome_len
        uint16_t key_len
        char pid[128]
        char outcome[64]
        char key[64]

    void pfshm_store_levels(pfshm_level* dst, const pfshm_level* src, size_t n)
    pfshm_copy* pfshm_copy_at(const pfshm_slot* s, size_t copy_size, uint64_t c)
    pfshm_level* pfshm_bids(pfshm_copy* c)
    pfshm_level* pfshm_asks(pfshm_copy* c, uint32_t max_levels)
    int64_t pfshm_now_ns()
    void pfshm_relax()
    pfshm_copy* pfshm_write_begin(pfshm_slot* s, size_t copy_size)
    pfshm_copy* pfshm_write_latest(const pfshm_slot* s, size_t copy_size)
    void pfshm_write_end(pfshm_slot* s)
    void pfshm_dir_begin(pfshm_header* h)
    void pfshm_dir_end(pfshm_header* h)
    uint64_t pfshm_dir_read_begin(const pfshm_header* h)
    int pfshm_dir_read_retry(const pfshm_header* h, uint64_t v)
    int pfshm_read_top(const pfshm_slot* s, size_t copy_size, uint32_t gen, pfshm_top* out)
    int pfshm_read_state(const pfshm_slot* s, size_t copy_size, uint32_t gen, pfshm_state* out)
    int pfshm_read_levels(const pfshm_slot* s, size_t copy_size, uint32_t gen,
                          uint32_t max_levels,
                          pfshm_level* bids, size_t cap_b, size_t* n_b,
                          pfshm_level* asks, size_t cap_a, size_t* n_a,
                          pfshm_top* top, uint32_t* total_b, uint32_t* total_a)
    int pfshm_read_ident(const pfshm_slot* s, size_t copy_size, pfshm_ident* out)
    uint64_t pfshm_hash(const char* pid, size_t pid_len, const char* key, size_t key_len)
    int pfshm_publish_changes(pfshm_header* h, pfshm_reader_page* r, uint32_t protocol)
    int pfshm_membarrier_register()
    int pfshm_membarrier()
    void pfshm_futex_wake(uint32_t* addr)
    int pfshm_futex_wait(const uint32_t* addr, uint32_t expected, int64_t timeout_ns)
    int pfshm_announce(const pfshm_header* h, pfshm_reader_page* r)
    uint32_t pfshm_load_changes(const pfshm_header* h)
    void pfshm_store_heartbeat(pfshm_header* h, int64_t ns)
    int64_t pfshm_load_heartbeat(const pfshm_header* h)
    uint32_t pfshm_load_state(const pfshm_header* h)
    void pfshm_store_state(pfshm_header* h, uint32_t state)
    void pfshm_bump_changes(pfshm_header* h)
    uint32_t pfshm_load_u32(const uint32_t* p)
    uint64_t pfshm_load_u64(const uint64_t* p)

    # the sizes a header records (and a reader checks)
    size_t SLOT_HEADER_SIZE "sizeof(pfshm_copy)"   # one copy's fixed part
    size_t SLOT_LOCK_SIZE "sizeof(pfshm_slot)"
    size_t HEADER_SIZE "sizeof(pfshm_header)"
    size_t READER_PAGE_SIZE "sizeof(pfshm_reader_page)"


cdef inline pfshm_slot* slot_at(char* slots, size_t slot_size, Py_ssize_t i) noexcept nogil:
    """Slot ``i`` of a region whose slots start at ``slots``."""
    return <pfshm_slot*>(slots + <size_t>i * slot_size)


# Shared by the writer and the readers (parsec_fast._shm):
cdef str check_name(object name)               # a region name, or ValueError
cdef uint64_t pidns_inode()                    # this process's pid namespace (0: unknown)
cdef str header_problem(const pfshm_header* h, size_t file_size)  # None, or why not readable
