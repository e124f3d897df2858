// viz/html and the atomic writer: base64 against RFC 4648's test vectors, data: URIs that decode to
// the same PNG, HTML escaping, and write_file_atomic leaving either the whole file or nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gradlens/viz/html.h"
#include "gradlens/viz/png.h"
#include "tests/testing.h"

namespace gradlens::viz {
namespace {

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

TEST(Viz, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(bytes_of(plain)), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded), bytes_of(plain)) << encoded;
  }
  std::vector<std::uint8_t> all(256 * 3 + 1);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i * 7 + 3);
  const std::string e = base64_encode(all);
  EXPECT_EQ(
      e.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
      std::string::npos);
  EXPECT_EQ(base64_decode(e), all);
  EXPECT_THROW(base64_decode("Zm9"), std::invalid_argument);       // length
  EXPECT_THROW(base64_decode("Zm9v!A=="), std::invalid_argument);  // alphabet
  EXPECT_THROW(base64_decode("Z=9v"), std::invalid_argument);      // '=' inside
  EXPECT_THROW(base64_decode("Zg==Zm9v"), std::invalid_argument);  // '=' before the end
}

TEST(Viz, PngDataUriDecodesToTheImage) {
  Image img = Image::blank(5, 4, 3);
  for (std::size_t i = 0; i < img.pixels.size(); ++i)
    img.pixels[i] = static_cast<std::uint8_t>(i * 13);
  const std::string uri = png_data_uri(img);
  const std::string prefix = "data:image/png;base64,";
  ASSERT_EQ(uri.rfind(prefix, 0), 0u);
  const std::vector<std::uint8_t> png = base64_decode(uri.substr(prefix.size()));
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png[1], 'P');
  const std::string path =
      (std::filesystem::path(testing::fresh_temp_dir("gradlens_viz_html")) / "x.png").string();
  write_file_atomic(path, png);
  const Image back = read_png(path);
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 4);
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST(Viz, HtmlEscape) {
  EXPECT_EQ(html_escape("a<b> & \"c\" 'd'"), "a&lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(Viz, WriteFileAtomicReplacesWholeOrNothing) {
  const std::filesystem::path dir = testing::fresh_temp_dir("gradlens_viz_atomic");
  const std::string path = (dir / "index.html").string();
  write_file_atomic(path, std::string_view("first version, longer than the second"));
  write_file_atomic(path, std::string_view("second"));
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "second");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);  // no temp file left
  const std::string missing = (dir / "no_such_dir" / "index.html").string();
  try {
    write_file_atomic(missing, std::string_view("x"));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "no_such_dir"));
}

}  // namespace
}  // namespace gradlens::viz
