// SPDY/3.1 frames and header blocks, HTTP request heads and WebSocket frames.
#include <zlib.h>

#include "cri/streaming/http_request.h"
#include "cri/streaming/spdy_dictionary.h"
#include "cri/streaming/spdy_frame.h"
#include "cri/streaming/websocket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::streaming {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(SpdyDictionary, IsTheSpdy3Dictionary) {
  // Starts with the length-prefixed "options" and ends with ",enq=0." (spec 2.6.10.1).
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(kSpdy3Dictionary), 11),
            std::string("\0\0\0\7options", 11));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(kSpdy3Dictionary) + 1416, 7), ",enq=0.");
  // The dictionary id a SPDY/3 zlib header names (Adler-32 of the dictionary).
  EXPECT_EQ(adler32(1, kSpdy3Dictionary, kSpdy3DictionarySize), 0xe3c6a7c2u);
}

TEST(SpdyFrame, ParsesControlFrameHeader) {
  std::string frame = spdy::EncodePing(7);
  // 0x8003 0006, flags 0, length 4.
  EXPECT_EQ(frame, std::string("\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x07", 12));
  auto parsed = spdy::ParseFrame(frame);
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->has_value());
  EXPECT_TRUE((*parsed)->first.control);
  EXPECT_EQ((*parsed)->first.type, 6);
  EXPECT_EQ((*parsed)->second, 12u);
  EXPECT_EQ(*spdy::DecodePing((*parsed)->first), 7u);
}

TEST(SpdyFrame, IncompleteFramesWaitForMoreBytes) {
  std::string frame = spdy::EncodeDataFrame(3, spdy::kFlagFin, "hello");
  for (size_t n = 0; n < frame.size(); ++n) {
    auto parsed = spdy::ParseFrame(absl::string_view(frame).substr(0, n));
    ASSERT_TRUE(parsed.ok());
    EXPECT_FALSE(parsed->has_value()) << n;
  }
  std::string with_more = frame + "trailing";
  auto parsed = spdy::ParseFrame(with_more);
  ASSERT_TRUE(parsed.ok() && parsed->has_value());
  EXPECT_FALSE((*parsed)->first.control);
  EXPECT_EQ((*parsed)->first.stream_id, 3u);
  EXPECT_EQ((*parsed)->first.flags, spdy::kFlagFin);
  EXPECT_EQ((*parsed)->first.payload, "hello");
  EXPECT_EQ((*parsed)->second, frame.size());
}

TEST(SpdyFrame, RejectsBadVersionStreamZeroAndOversizedFrames) {
  std::string v2 = spdy::EncodePing(1);
  v2[1] = 2;
  EXPECT_THAT(spdy::ParseFrame(v2).status().message(), HasSubstr("unsupported version 2"));
  EXPECT_FALSE(spdy::ParseFrame(spdy::EncodeDataFrame(0, 0, "x")).ok());
  std::string big = spdy::EncodeDataFrame(1, 0, std::string(100, 'x'));
  EXPECT_THAT(spdy::ParseFrame(big, 50).status().message(), HasSubstr("exceeds the limit"));
  // A control frame declaring a huge payload is refused from its header alone.
  std::string header = spdy::EncodeControlFrame(spdy::FrameType::kSynStream, 0, "");
  header[5] = header[6] = header[7] = '\xff';
  EXPECT_FALSE(spdy::ParseFrame(header, spdy::kMaxFramePayload, 1024).ok());
}

TEST(SpdyFrame, ControlFramesRoundTrip) {
  auto decode = [](const std::string& bytes) {
    auto parsed = spdy::ParseFrame(bytes);
    EXPECT_TRUE(parsed.ok() && parsed->has_value());
    return (*parsed)->first;
  };
  std::string rst_bytes = spdy::EncodeRstStream(5, spdy::RstStatus::kRefusedStream);
  auto rst = spdy::DecodeRstStream(decode(rst_bytes));
  ASSERT_TRUE(rst.ok());
  EXPECT_EQ(rst->stream_id, 5u);
  EXPECT_EQ(rst->status, 3u);
  std::string goaway_bytes = spdy::EncodeGoAway(9, spdy::GoAwayStatus::kProtocolError);
  auto goaway = spdy::DecodeGoAway(decode(goaway_bytes));
  ASSERT_TRUE(goaway.ok());
  EXPECT_EQ(goaway->last_good_stream_id, 9u);
  EXPECT_EQ(goaway->status, 1u);
  std::string settings_bytes = spdy::EncodeSettings({{0, 7, 65536}, {1, 4, 100}});
  auto settings = spdy::DecodeSettings(decode(settings_bytes));
  ASSERT_TRUE(settings.ok());
  ASSERT_EQ(settings->size(), 2u);
  EXPECT_EQ((*settings)[0].id, 7u);
  EXPECT_EQ((*settings)[0].value, 65536u);
  EXPECT_EQ((*settings)[1].flags, 1);
  std::string window_bytes = spdy::EncodeWindowUpdate(3, 1000);
  auto window = spdy::DecodeWindowUpdate(decode(window_bytes));
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(window->stream_id, 3u);
  EXPECT_EQ(window->delta, 1000u);
  std::string syn_bytes = spdy::EncodeSynStream(11, 0, 2, spdy::kFlagFin, "hdrs");
  auto syn = spdy::DecodeSynStream(decode(syn_bytes));
  ASSERT_TRUE(syn.ok());
  EXPECT_EQ(syn->stream_id, 11u);
  EXPECT_EQ(syn->priority, 2);
  EXPECT_EQ(syn->flags, spdy::kFlagFin);
  EXPECT_EQ(syn->compressed_headers, "hdrs");
  std::string reply_bytes = spdy::EncodeSynReply(11, 0, "h");
  auto reply = spdy::DecodeSynReply(decode(reply_bytes));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->stream_id, 11u);
}

TEST(SpdyFrame, RejectsMalformedControlPayloads) {
  spdy::RawFrame frame;
  frame.control = true;
  frame.payload = "abc";
  EXPECT_FALSE(spdy::DecodePing(frame).ok());
  EXPECT_FALSE(spdy::DecodeRstStream(frame).ok());
  EXPECT_FALSE(spdy::DecodeGoAway(frame).ok());
  EXPECT_FALSE(spdy::DecodeSynStream(frame).ok());
  EXPECT_FALSE(spdy::DecodeSettings(frame).ok());
  std::string settings("\0\0\0\5", 4);  // claims 5 entries, has none
  frame.payload = settings;
  EXPECT_FALSE(spdy::DecodeSettings(frame).ok());
}

TEST(SpdyHeaders, CompressionContextSpansBlocks) {
  spdy::HeaderCompressor compressor;
  spdy::HeaderDecompressor decompressor;
  for (int i = 0; i < 5; ++i) {
    spdy::HeaderBlock headers = {
        {"streamtype", "data"}, {"port", "8080"}, {"requestid", std::to_string(i)}};
    auto block = compressor.Encode(headers);
    ASSERT_TRUE(block.ok());
    auto decoded = decompressor.Decode(*block);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_THAT(*decoded, ElementsAre(Pair("streamtype", "data"), Pair("port", "8080"),
                                      Pair("requestid", std::to_string(i))));
    EXPECT_EQ(spdy::HeaderValue(*decoded, "StreamType"), "data");
  }
}

TEST(SpdyHeaders, UsesTheDictionaryLikeOtherImplementations) {
  // A zlib stream whose header names the SPDY/3 dictionary id (FDICT set).
  spdy::HeaderCompressor compressor;
  auto block = compressor.Encode({{"streamtype", "error"}});
  ASSERT_TRUE(block.ok());
  ASSERT_GE(block->size(), 6u);
  EXPECT_EQ(static_cast<uint8_t>((*block)[1]) & 0x20, 0x20);
  EXPECT_EQ(block->substr(2, 4), std::string("\xe3\xc6\xa7\xc2", 4));
}

TEST(SpdyHeaders, RejectsCorruptAndOversizedBlocks) {
  spdy::HeaderDecompressor garbage;
  EXPECT_FALSE(garbage.Decode("this is not zlib").ok());
  // Once broken, the context stays unusable (the peer's stream is lost).
  EXPECT_FALSE(garbage.Decode("").ok());

  spdy::HeaderCompressor compressor;
  spdy::HeaderDecompressor small(64);
  auto block = compressor.Encode({{"name", std::string(1000, 'v')}});
  ASSERT_TRUE(block.ok());
  EXPECT_THAT(small.Decode(*block).status().message(), HasSubstr("larger than"));
}

TEST(SpdyHeaders, ParsesAndValidatesNameValueBlocks) {
  std::string block = spdy::SerializeHeaderBlock({{"a", "1"}, {"b", std::string("x\0y", 3)}});
  auto parsed = spdy::ParseHeaderBlock(block);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(spdy::HeaderValue(*parsed, "b"), "x");
  EXPECT_FALSE(spdy::ParseHeaderBlock(block.substr(0, block.size() - 1)).ok());
  EXPECT_FALSE(spdy::ParseHeaderBlock(block + "x").ok());
  EXPECT_FALSE(spdy::ParseHeaderBlock(spdy::SerializeHeaderBlock({{"a", "1"}, {"A", "2"}})).ok());
  EXPECT_FALSE(spdy::ParseHeaderBlock(spdy::SerializeHeaderBlock({{"", "1"}})).ok());
  EXPECT_FALSE(spdy::ParseHeaderBlock(std::string("\xff\xff\xff\xff", 4)).ok());
}

TEST(HttpRequestParser, ParsesAnUpgradeRequest) {
  std::string text =
      "POST /exec/abc?x=1&port=80&port=443 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
      "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
      "X-Stream-Protocol-Version: v3.channel.k8s.io, v2.channel.k8s.io\r\n\r\nSPDYBYTES";
  size_t head = 0;
  auto parsed = ParseHttpRequest(text, &head);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->has_value());
  const HttpRequest& req = **parsed;
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/exec/abc");
  EXPECT_THAT(req.QueryValues("port"), ElementsAre("80", "443"));
  EXPECT_TRUE(req.HeaderHasToken("connection", "upgrade"));
  EXPECT_THAT(req.HeaderList("x-stream-protocol-version"),
              ElementsAre("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"));
  EXPECT_EQ(text.substr(head), "SPDYBYTES");
}

TEST(HttpRequestParser, WaitsForTheBlankLine) {
  size_t head = 0;
  auto parsed = ParseHttpRequest("GET / HTTP/1.1\r\nHost: x\r\n", &head);
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->has_value());
}

TEST(HttpRequestParser, RejectsMalformedHeads) {
  size_t head = 0;
  for (const char* bad :
       {"GET /\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET x HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n folded: x\r\n\r\n", "GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
        "GET / HTTP/1.1\r\nA: \x01\r\n\r\n"}) {
    auto parsed = ParseHttpRequest(bad, &head);
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << bad;
  }
}

TEST(HttpRequestParser, EnforcesSizeLimits) {
  size_t head = 0;
  std::string huge = "GET / HTTP/1.1\r\nA: " + std::string(kMaxRequestHeadBytes, 'x');
  EXPECT_TRUE(absl::IsResourceExhausted(ParseHttpRequest(huge, &head).status()));
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaderCount; ++i) {
    many += "A: b\r\n";
  }
  many += "\r\n";
  EXPECT_TRUE(absl::IsResourceExhausted(ParseHttpRequest(many, &head).status()));
}

TEST(HttpResponse, IsCompleteAndCloses) {
  std::string r = HttpResponse(404, "gone", {{"X-A", "1"}});
  EXPECT_EQ(r,
            "HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 5\r\nConnection: close\r\n\r\ngone\n");
}

TEST(WebSocket, AcceptKeyMatchesRfc6455Example) {
  EXPECT_EQ(ws::AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocket, FramesRoundTripAtEveryLengthEncoding) {
  for (size_t size : {0u, 5u, 125u, 126u, 65535u, 65536u, 200000u}) {
    std::string payload(size, 'a');
    for (size_t i = 0; i < size; ++i) {
      payload[i] = static_cast<char>(i * 7);
    }
    std::string masked = ws::EncodeFrame(ws::kBinary, payload, 0xa1b2c3d4u);
    auto parsed = ws::ParseFrame(masked, true, 1 << 20);
    ASSERT_TRUE(parsed.ok() && parsed->has_value()) << size;
    EXPECT_EQ((*parsed)->first.payload, payload);
    EXPECT_EQ((*parsed)->second, masked.size());
    EXPECT_TRUE((*parsed)->first.fin);
    auto partial =
        ws::ParseFrame(absl::string_view(masked).substr(0, masked.size() - 1), true, 1 << 20);
    ASSERT_TRUE(partial.ok());
    EXPECT_FALSE(partial->has_value());
  }
}

TEST(WebSocket, RejectsProtocolViolations) {
  EXPECT_THAT(ws::ParseFrame(ws::EncodeFrame(ws::kBinary, "x"), true, 100).status().message(),
              HasSubstr("without a mask"));
  std::string reserved = ws::EncodeFrame(ws::kBinary, "x", 1u);
  reserved[0] = static_cast<char>(reserved[0] | 0x40);
  EXPECT_FALSE(ws::ParseFrame(reserved, true, 100).ok());
  EXPECT_FALSE(ws::ParseFrame(ws::EncodeFrame(0x3, "x", 1u), true, 100).ok());
  EXPECT_FALSE(
      ws::ParseFrame(ws::EncodeFrame(ws::kPing, std::string(126, 'x'), 1u), true, 1000).ok());
  EXPECT_FALSE(ws::ParseFrame(ws::EncodeFrame(ws::kPing, "x", 1u, /*fin=*/false), true, 100).ok());
  EXPECT_FALSE(
      ws::ParseFrame(ws::EncodeFrame(ws::kBinary, std::string(200, 'x'), 1u), true, 100).ok());
}

}  // namespace
}  // namespace crid::streaming
