package main

import (
	"testing"

	"github.com/bachata-chat/bachata/libs/localsuite"
)

func TestLocalPorts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		base    string
		want    localsuite.Ports
		wantErr bool
	}{
		{name: "unset keeps the defaults", base: "", want: localsuite.DefaultPorts},
		{name: "the default base keeps the defaults", base: "8080", want: localsuite.DefaultPorts},
		{
			name: "every port moves with the base",
			base: "20080",
			want: localsuite.Ports{
				GatewayWS:  20080,
				RouterGRPC: 21081, RouterHTTP: 20181,
				DeliveryGRPC: 21082, DeliveryHTTP: 20182,
				PresenceGRPC: 21083, PresenceHTTP: 20183,
			},
		},
		{
			name: "the highest base that fits",
			base: "64532",
			want: localsuite.Ports{
				GatewayWS:  64532,
				RouterGRPC: 65533, RouterHTTP: 64633,
				DeliveryGRPC: 65534, DeliveryHTTP: 64634,
				PresenceGRPC: 65535, PresenceHTTP: 64635,
			},
		},
		{name: "past the top", base: "64533", wantErr: true},
		{name: "zero", base: "0", wantErr: true},
		{name: "negative", base: "-1", wantErr: true},
		{name: "not a number", base: "eighty", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := localPorts(func(k string) string {
				if k == "BACHATA_LOCAL_BASE_PORT" {
					return tt.base
				}
				return ""
			})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("localPorts(%q) = %+v, want an error", tt.base, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("localPorts(%q): %v", tt.base, err)
			}
			if got != tt.want {
				t.Fatalf("localPorts(%q) = %+v, want %+v", tt.base, got, tt.want)
			}
		})
	}
}
