#include "kiln/data/tfrecord.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "kiln/base/str.h"
#include "kiln/base/tfrecord_framing.h"

namespace kiln::data {

static_assert(kTfRecordHeaderBytes == tfrecord::kHeaderBytes &&
              kTfRecordFooterBytes == tfrecord::kFooterBytes);

// Chunk size for file reads, inflate output and the writer's buffer.
constexpr size_t kChunkBytes = 256 << 10;
// zlib counts in uInt; hand it at most this much at a time.
constexpr size_t kMaxZlibSlice = size_t{1} << 30;

class ChunkStream {
 public:
  virtual ~ChunkStream() = default;
  // The next bytes of the stream, valid until the next call; empty at the end (and on
  // every call after it).
  virtual absl::StatusOr<std::string_view> Next() = 0;
};

namespace {

bool HasGzipMagic(std::string_view head) {
  return head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
         static_cast<unsigned char>(head[1]) == 0x8b;
}

class MemoryStream : public ChunkStream {
 public:
  explicit MemoryStream(std::string_view data) : data_(data) {}
  absl::StatusOr<std::string_view> Next() override {
    std::string_view out = data_;
    data_ = {};
    return out;
  }

 private:
  std::string_view data_;
};

class FileStream : public ChunkStream {
 public:
  explicit FileStream(std::unique_ptr<SequentialFile> file)
      : file_(std::move(file)), buf_(kChunkBytes, '\0') {}

  // Reads until at least n bytes are buffered (or the file ends) and returns them; the
  // next Next() hands the same bytes out again.
  absl::StatusOr<std::string_view> Peek(size_t n) {
    while (len_ < n) {
      KILN_ASSIGN_OR_RETURN(size_t got, file_->Read(buf_.size() - len_, buf_.data() + len_));
      if (got == 0) break;
      len_ += got;
    }
    peeked_ = true;
    return std::string_view(buf_.data(), len_);
  }

  absl::StatusOr<std::string_view> Next() override {
    if (peeked_) {
      peeked_ = false;
      if (len_ > 0) return std::string_view(buf_.data(), len_);
    }
    KILN_ASSIGN_OR_RETURN(len_, file_->Read(buf_.size(), buf_.data()));
    return std::string_view(buf_.data(), len_);
  }

 private:
  std::unique_ptr<SequentialFile> file_;
  std::string buf_;
  size_t len_ = 0;
  bool peeked_ = false;
};

// Inflates a gzip stream (one or more concatenated members, as `cat a.gz b.gz` makes).
class GzipStream : public ChunkStream {
 public:
  static absl::StatusOr<std::unique_ptr<GzipStream>> Create(std::unique_ptr<ChunkStream> in) {
    std::unique_ptr<GzipStream> s(new GzipStream(std::move(in)));
    // 16 + MAX_WBITS: expect a gzip header and trailer, not a raw zlib stream.
    if (inflateInit2(&s->z_, 16 + MAX_WBITS) != Z_OK) {
      return absl::ResourceExhaustedError("cannot initialise zlib inflate");
    }
    s->initialised_ = true;
    return s;
  }
  ~GzipStream() override {
    if (initialised_) inflateEnd(&z_);
  }

  absl::StatusOr<std::string_view> Next() override {
    KILN_RETURN_IF_ERROR(deferred_);
    if (done_) return std::string_view();
    for (;;) {
      if (pending_.empty() && !in_eof_) {
        KILN_ASSIGN_OR_RETURN(pending_, src_->Next());
        if (pending_.empty()) in_eof_ = true;
      }
      if (member_end_) {
        if (pending_.empty()) {  // in_eof_ must be set here
          done_ = true;
          return std::string_view();
        }
        // More bytes after a finished member: another member follows.
        inflateReset(&z_);
        member_end_ = false;
      }
      const size_t give = std::min(pending_.size(), kMaxZlibSlice);
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(pending_.data()));
      z_.avail_in = static_cast<uInt>(give);
      z_.next_out = reinterpret_cast<Bytef*>(out_.data());
      z_.avail_out = static_cast<uInt>(out_.size());
      int rc = inflate(&z_, Z_NO_FLUSH);
      pending_.remove_prefix(give - z_.avail_in);
      const size_t produced = out_.size() - z_.avail_out;
      if (rc == Z_STREAM_END) member_end_ = true;
      if (rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR) {
        if (produced > 0) return std::string_view(out_.data(), produced);
        if (rc == Z_BUF_ERROR && pending_.empty() && in_eof_) {
          return absl::DataLossError("gzip stream is truncated");
        }
        continue;
      }
      // Hand out what was inflated before the damage; the error follows on the next call.
      deferred_ = absl::DataLossError(
          kiln::StrCat("gzip stream is damaged: ", z_.msg != nullptr ? z_.msg : zError(rc)));
      if (produced > 0) return std::string_view(out_.data(), produced);
      return deferred_;
    }
  }

 private:
  explicit GzipStream(std::unique_ptr<ChunkStream> in)
      : src_(std::move(in)), out_(kChunkBytes, '\0') {}

  std::unique_ptr<ChunkStream> src_;
  z_stream z_{};
  bool initialised_ = false;
  std::string_view pending_;  // compressed bytes not yet consumed
  std::string out_;
  bool in_eof_ = false;
  bool member_end_ = false;
  bool done_ = false;
  absl::Status deferred_;
};

}  // namespace

void AppendTfRecord(std::string* out, std::string_view data) { tfrecord::AppendRecord(out, data); }

// ---------------------------------------------------------------------------- reader

TFRecordReader::TFRecordReader(std::unique_ptr<ChunkStream> stream, std::string name,
                               bool compressed, const Options& options)
    : stream_(std::move(stream)),
      name_(std::move(name)),
      compressed_(compressed),
      options_(options) {}

TFRecordReader::~TFRecordReader() = default;

absl::StatusOr<std::unique_ptr<TFRecordReader>> TFRecordReader::Open(Env* env,
                                                                     const std::string& path,
                                                                     const Options& options) {
  KILN_ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(path));
  auto stream = std::make_unique<FileStream>(std::move(file));
  KILN_ASSIGN_OR_RETURN(std::string_view head, stream->Peek(2));
  const bool gzip = HasGzipMagic(head);
  std::unique_ptr<ChunkStream> top = std::move(stream);
  if (gzip) {
    KILN_ASSIGN_OR_RETURN(top, GzipStream::Create(std::move(top)));
  }
  return std::unique_ptr<TFRecordReader>(new TFRecordReader(std::move(top), path, gzip, options));
}

absl::StatusOr<std::unique_ptr<TFRecordReader>> TFRecordReader::FromMemory(std::string_view data,
                                                                           std::string name,
                                                                           const Options& options) {
  const bool gzip = HasGzipMagic(data);
  std::unique_ptr<ChunkStream> top = std::make_unique<MemoryStream>(data);
  if (gzip) {
    KILN_ASSIGN_OR_RETURN(top, GzipStream::Create(std::move(top)));
  }
  return std::unique_ptr<TFRecordReader>(
      new TFRecordReader(std::move(top), std::move(name), gzip, options));
}

absl::Status TFRecordReader::WithContext(const absl::Status& s) const {
  return absl::Status(s.code(),
                      kiln::StrCat(name_, ": record ", next_index_, " at byte offset ", cur_offset_,
                                   compressed_ ? " (uncompressed)" : "", ": ", s.message()));
}

absl::Status TFRecordReader::Corrupt(const std::string& what) const {
  return WithContext(absl::DataLossError(what));
}

absl::StatusOr<size_t> TFRecordReader::ReadBytes(char* dst, size_t n) {
  size_t done = 0;
  while (done < n) {
    if (chunk_.empty()) {
      absl::StatusOr<std::string_view> c = stream_->Next();
      if (!c.ok()) return WithContext(c.status());
      chunk_ = *c;
      if (chunk_.empty()) break;
    }
    const size_t take = std::min(n - done, chunk_.size());
    std::memcpy(dst + done, chunk_.data(), take);
    chunk_.remove_prefix(take);
    done += take;
  }
  pos_ += done;
  return done;
}

absl::StatusOr<size_t> TFRecordReader::AppendBytes(std::string* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    if (chunk_.empty()) {
      absl::StatusOr<std::string_view> c = stream_->Next();
      if (!c.ok()) return WithContext(c.status());
      chunk_ = *c;
      if (chunk_.empty()) break;
    }
    const size_t take = std::min(n - done, chunk_.size());
    out->append(chunk_.data(), take);
    chunk_.remove_prefix(take);
    done += take;
  }
  pos_ += done;
  return done;
}

absl::StatusOr<bool> TFRecordReader::Next(std::string* record) {
  record->clear();
  return AppendNext(record);
}

absl::StatusOr<bool> TFRecordReader::AppendNext(std::string* out) {
  cur_offset_ = pos_;
  char header[kTfRecordHeaderBytes];
  KILN_ASSIGN_OR_RETURN(size_t got, ReadBytes(header, sizeof(header)));
  if (got == 0) return false;
  if (got < sizeof(header)) {
    return Corrupt(kiln::StrCat("truncated record header (", got, " of 12 bytes)"));
  }
  uint64_t length = 0;
  if (!tfrecord::DecodeHeader(header, &length)) {
    return Corrupt("record length fails its CRC check");
  }
  if (length > options_.max_record_bytes) {
    return Corrupt(kiln::StrCat("record length ", length, " exceeds the limit of ",
                                options_.max_record_bytes, " bytes"));
  }
  const size_t start = out->size();
  KILN_ASSIGN_OR_RETURN(got, AppendBytes(out, static_cast<size_t>(length)));
  if (got < length) {
    out->resize(start);
    return Corrupt(kiln::StrCat("truncated record data (", got, " of ", length, " bytes)"));
  }
  char footer[kTfRecordFooterBytes];
  KILN_ASSIGN_OR_RETURN(got, ReadBytes(footer, sizeof(footer)));
  if (got < sizeof(footer)) {
    out->resize(start);
    return Corrupt(kiln::StrCat("truncated record data CRC (", got, " of 4 bytes)"));
  }
  if (!tfrecord::FooterMatches(std::string_view(out->data() + start, length), footer)) {
    out->resize(start);
    return Corrupt("record data fails its CRC check");
  }
  last_index_ = next_index_++;
  last_offset_ = cur_offset_;
  return true;
}

// ---------------------------------------------------------------------------- writer

struct TFRecordWriter::Deflater {
  z_stream z{};
  std::string out = std::string(kChunkBytes, '\0');
  ~Deflater() { deflateEnd(&z); }

  // Compresses `in`; with finish, also ends the gzip stream. Output goes to `file`.
  absl::Status Run(std::string_view in, bool finish, AtomicFileWriter* file) {
    do {
      const size_t give = std::min(in.size(), kMaxZlibSlice);
      const int mode = (finish && give == in.size()) ? Z_FINISH : Z_NO_FLUSH;
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = static_cast<uInt>(give);
      for (;;) {
        z.next_out = reinterpret_cast<Bytef*>(out.data());
        z.avail_out = static_cast<uInt>(out.size());
        const int rc = deflate(&z, mode);
        if (rc == Z_STREAM_ERROR) return absl::InternalError("zlib deflate failed");
        const size_t produced = out.size() - z.avail_out;
        if (produced > 0) {
          KILN_RETURN_IF_ERROR(file->Append(std::string_view(out.data(), produced)));
        }
        if (mode == Z_FINISH) {
          if (rc == Z_STREAM_END) break;
        } else if (z.avail_out != 0) {
          break;  // all input taken and nothing left pending
        }
      }
      in.remove_prefix(give);
    } while (!in.empty());
    return absl::OkStatus();
  }
};

TFRecordWriter::TFRecordWriter(std::unique_ptr<AtomicFileWriter> file,
                               std::unique_ptr<Deflater> deflater)
    : file_(std::move(file)), deflater_(std::move(deflater)) {
  buffer_.reserve(kChunkBytes);
}

TFRecordWriter::~TFRecordWriter() = default;

absl::StatusOr<std::unique_ptr<TFRecordWriter>> TFRecordWriter::Create(Env* env,
                                                                       const std::string& path,
                                                                       const Options& options) {
  std::unique_ptr<Deflater> deflater;
  if (options.gzip) {
    deflater = std::make_unique<Deflater>();
    if (deflateInit2(&deflater->z, options.gzip_level, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      // deflateEnd on a stream that failed to initialise is harmless (Z_STREAM_ERROR).
      return absl::InvalidArgumentError(
          kiln::StrCat(path, ": cannot start gzip at level ", options.gzip_level));
    }
  }
  KILN_ASSIGN_OR_RETURN(auto file, AtomicFileWriter::Create(env, path));
  return std::unique_ptr<TFRecordWriter>(new TFRecordWriter(std::move(file), std::move(deflater)));
}

absl::Status TFRecordWriter::FlushBuffer(bool finish) {
  absl::Status s;
  if (deflater_) {
    s = deflater_->Run(buffer_, finish, file_.get());
  } else if (!buffer_.empty()) {
    s = file_->Append(buffer_);
  }
  buffer_.clear();
  return s;
}

absl::Status TFRecordWriter::Emit(std::string_view bytes) {
  if (buffer_.size() + bytes.size() <= kChunkBytes) {
    buffer_.append(bytes);
    return absl::OkStatus();
  }
  KILN_RETURN_IF_ERROR(FlushBuffer(false));
  if (bytes.size() < kChunkBytes) {
    buffer_.append(bytes);
    return absl::OkStatus();
  }
  // Large records bypass the buffer.
  if (deflater_) return deflater_->Run(bytes, false, file_.get());
  return file_->Append(bytes);
}

absl::Status TFRecordWriter::Write(std::string_view record) {
  if (closed_) return absl::FailedPreconditionError("TFRecordWriter: write after Close");
  char header[kTfRecordHeaderBytes];
  tfrecord::EncodeHeader(record.size(), header);
  char footer[kTfRecordFooterBytes];
  tfrecord::EncodeFooter(record, footer);
  KILN_RETURN_IF_ERROR(Emit(std::string_view(header, sizeof(header))));
  KILN_RETURN_IF_ERROR(Emit(record));
  KILN_RETURN_IF_ERROR(Emit(std::string_view(footer, sizeof(footer))));
  ++records_;
  return absl::OkStatus();
}

absl::Status TFRecordWriter::Close() {
  if (closed_) return absl::OkStatus();
  KILN_RETURN_IF_ERROR(FlushBuffer(true));
  KILN_RETURN_IF_ERROR(file_->Commit());
  closed_ = true;
  return absl::OkStatus();
}

}  // namespace kiln::data
