// A program outside the ringfetch tree using the gcs layer through ringfetch-gcs.pc only.
#include <gcs/crc32c.hpp>
#include <gcs/endpoint.hpp>
#include <gcs/headers.hpp>
#include <gcs/metadata.hpp>
#include <gcs/object_path.hpp>

#include <cstdio>

int main() {
  using namespace ringfetch::gcs;
  auto path = object_path::parse("gs://bucket/a b");
  auto where = resolve_endpoint("", std::nullopt);
  auto meta = parse_object_metadata(R"({"name":"a b","size":"9","generation":"1","crc32c":"4waSgw=="})");
  auto range = parse_content_range("bytes 0-8/9");
  bool ok = path && where && meta && range && meta->crc32c == crc32c::of("123456789") &&
            where->url_for(media_target(*path, meta->generation)).str() ==
                "https://storage.googleapis.com/download/storage/v1/b/bucket/o/a%20b?alt=media&generation=1";
  std::puts(ok ? "gcs consumer ok" : "gcs consumer FAILED");
  return ok ? 0 : 1;
}
