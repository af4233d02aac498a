@_spi(Parsers) import SessionKit
import Testing

@Suite struct FormBodyTests {
    @Test func urlEncodedFieldsAreFoundAndDecoded() throws {
        let form = try #require(FormBody(contentType: "application/x-www-form-urlencoded; charset=utf-8"))
        #expect(form.field(named: "_csrf", in: "a=1&_csrf=ab%2Bc&_csrf=second") == "ab+c")
        #expect(form.field(named: "_csrf", in: "a=1&b=2") == nil)
        #expect(form.field(named: "_csrf", in: "_csrf") == "")
    }

    @Test func multipartFieldsAreFound() throws {
        let form = try #require(FormBody(contentType: #"multipart/form-data; boundary="XyZ""#))
        let body = [
            "--XyZ", #"Content-Disposition: form-data; name="note""#, "", "hello", "--XyZ",
            #"Content-Disposition: form-data; name="_csrf""#, "", "token-value", "--XyZ--", "",
        ].joined(separator: "\r\n")
        #expect(form.field(named: "_csrf", in: body) == "token-value")
        #expect(form.field(named: "missing", in: body) == nil)
    }

    @Test func urlEncodedBodiesGiveEveryField() {
        #expect(FormBody.urlEncoded.fieldsByName(in: "a=1&b=x+y&a=2&c&d=%E2%9C%93") == ["a": "2", "b": "x y", "c": "", "d": "✓"])
    }

    @Test func multipartPartsAreNamedByNameNotFilename() throws {
        let form = try #require(FormBody(contentType: "multipart/form-data; boundary=b"))
        let body = [
            "--b", #"Content-Disposition: form-data; filename="x.txt"; name="upload""#, "", "data", "--b",
            #"Content-Disposition: form-data; name="sku""#, "", "mug", "--b",
            "Content-Type: text/plain", "", "no name", "--b--", "",
        ].joined(separator: "\r\n")
        #expect(form.fieldsByName(in: body) == ["upload": "data", "sku": "mug"])
    }

    @Test func otherBodiesAreNotForms() {
        #expect(FormBody(contentType: "application/json") == nil)
        #expect(FormBody(contentType: "text/plain") == nil)
        #expect(FormBody(contentType: "multipart/form-data") == nil)  // no boundary
    }
}
