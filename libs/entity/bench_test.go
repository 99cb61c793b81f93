package entity

import "testing"

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("@bob@chat.example.com:8443"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolveUserBare(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ResolveUser("bob", "localhost"); err != nil {
			b.Fatal(err)
		}
	}
}
